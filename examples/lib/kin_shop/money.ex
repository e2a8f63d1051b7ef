defmodule KinShop.Money do
  @moduledoc """
  Money values as integer cents plus an ISO 4217 currency code.

  Amounts are never floats: every operation works on integer cents and
  rounds explicitly (half up) where a fraction of a cent could appear,
  matching the C++ pricing engine in `packages/pricing_nif`.
  """
  import KinShop.Guards

  @enforce_keys [:cents, :currency]
  defstruct [:cents, :currency]

  @type t :: %__MODULE__{cents: integer(), currency: String.t()}

  @symbols %{"EUR" => "€", "USD" => "$", "GBP" => "£"}

  @doc """
  Builds a money value from integer `cents` and a three-letter currency
  code, which defaults to `"EUR"`.

      iex> KinShop.Money.new(1250, "USD")
      %KinShop.Money{cents: 1250, currency: "USD"}
  """
  @spec new(integer(), String.t()) :: t()
  def new(cents, currency \\ "EUR") when is_integer(cents) and is_currency(currency) do
    %__MODULE__{cents: cents, currency: currency}
  end

  @doc "Returns a zero amount in `currency`."
  @spec zero(String.t()) :: t()
  def zero(currency), do: new(0, currency)

  @doc """
  Adds two amounts of the same currency. Adding different currencies is a
  programming error and raises `ArgumentError`; there is no implicit FX.
  """
  @spec add(t(), t()) :: t()
  def add(%__MODULE__{currency: c} = a, %__MODULE__{currency: c} = b) do
    %__MODULE__{a | cents: a.cents + b.cents}
  end

  def add(%__MODULE__{currency: a}, %__MODULE__{currency: b}) do
    raise ArgumentError, "cannot add #{a} to #{b}"
  end

  @doc "Sums a list of amounts, returning zero in `currency` for an empty list."
  @spec sum([t()], String.t()) :: t()
  def sum([], currency), do: zero(currency)
  def sum(amounts, currency), do: Enum.reduce(amounts, zero(currency), &add/2)

  @doc "Multiplies a unit price by an integer quantity."
  @spec multiply(t(), non_neg_integer()) :: t()
  def multiply(%__MODULE__{cents: cents} = money, quantity)
      when is_integer(quantity) and quantity >= 0 do
    %__MODULE__{money | cents: cents * quantity}
  end

  @doc """
  Reduces the amount by a percentage given in basis points (1/100 of a
  percent, so 1 250 means 12.5%). The discount itself is rounded half up
  to a whole cent before it is subtracted.

      iex> KinShop.Money.new(999) |> KinShop.Money.apply_discount(1_000)
      %KinShop.Money{cents: 899, currency: "EUR"}
  """
  @spec apply_discount(t(), 0..10_000) :: t()
  def apply_discount(%__MODULE__{cents: cents} = money, basis_points)
      when is_basis_points(basis_points) do
    discount = div(cents * basis_points + 5_000, 10_000)
    %__MODULE__{money | cents: cents - discount}
  end

  @doc """
  Formats an amount for display: the currency symbol when one is known,
  thousands separated by commas and always two decimals, e.g. `"€1,299.00"`
  or `"12.50 CHF"`. Negative amounts get a leading minus sign.
  """
  @spec format(t()) :: String.t()
  def format(%__MODULE__{cents: cents} = money) when cents < 0 do
    "-" <> format(%__MODULE__{money | cents: -cents})
  end

  def format(%__MODULE__{cents: cents, currency: currency}) do
    units = cents |> div(100) |> Integer.to_string() |> group_thousands()
    fraction = cents |> rem(100) |> Integer.to_string() |> String.pad_leading(2, "0")

    case Map.fetch(@symbols, currency) do
      {:ok, symbol} -> symbol <> units <> "." <> fraction
      :error -> units <> "." <> fraction <> " " <> currency
    end
  end

  @doc """
  Parses user input such as `"12.50 EUR"`, `"€12.5"` or `"1,299 USD"` into
  a money value. A bare number is taken to be in euros.

      iex> KinShop.Money.parse("$1,299.9")
      {:ok, %KinShop.Money{cents: 129_990, currency: "USD"}}
  """
  @spec parse(String.t()) :: {:ok, t()} | {:error, :invalid_amount | :invalid_currency}
  def parse(input) when is_binary(input) do
    {currency, number} = input |> String.trim() |> split_currency()

    if is_currency(currency) do
      with {:ok, cents} <- number |> String.replace(",", "") |> parse_cents() do
        {:ok, new(cents, currency)}
      end
    else
      {:error, :invalid_currency}
    end
  end

  defp split_currency(input) do
    case Enum.find(@symbols, fn {_code, symbol} -> String.starts_with?(input, symbol) end) do
      {code, symbol} ->
        {code, input |> String.replace_prefix(symbol, "") |> String.trim()}

      nil ->
        case String.split(input, " ", trim: true) do
          [number, code] -> {String.upcase(code), number}
          [number] -> {"EUR", number}
          _other -> {"EUR", input}
        end
    end
  end

  defp parse_cents(number) do
    case String.split(number, ".") do
      [units] -> combine(units, "00")
      [units, frac] when byte_size(frac) in 1..2 -> combine(units, String.pad_trailing(frac, 2, "0"))
      _other -> {:error, :invalid_amount}
    end
  end

  defp combine(units, frac) do
    with {u, ""} when u >= 0 <- Integer.parse(units),
         {f, ""} <- Integer.parse(frac) do
      {:ok, u * 100 + f}
    else
      _ -> {:error, :invalid_amount}
    end
  end

  defp group_thousands(digits) do
    digits
    |> String.reverse()
    |> String.graphemes()
    |> Enum.chunk_every(3)
    |> Enum.map_join(",", &Enum.join/1)
    |> String.reverse()
  end
end
