defmodule KinShop.Parsers.Sku do
  @moduledoc """
  Parsing and normalisation of stock keeping units.

  A KinShop SKU looks like `KS-TEE-00042` or `KS-TEE-00042-XL`: the fixed
  `KS` prefix, a three-letter upper-case category, a five-digit article
  number and an optional size or colour variant.
  """

  defstruct [:category, :number, variant: nil]

  @type t :: %__MODULE__{category: String.t(), number: non_neg_integer(), variant: String.t() | nil}

  @variant_pattern ~r/^[A-Z0-9]{1,4}$/

  @doc """
  Parses a SKU string into its parts.

      iex> KinShop.Parsers.Sku.parse("KS-TEE-00042-XL")
      {:ok, %KinShop.Parsers.Sku{category: "TEE", number: 42, variant: "XL"}}
  """
  @spec parse(String.t()) :: {:ok, t()} | {:error, :invalid_sku}
  def parse(<<"KS-", category::binary-size(3), "-", rest::binary>>) do
    with true <- upper_alpha?(category),
         {:ok, number, variant} <- split_number(rest) do
      {:ok, %__MODULE__{category: category, number: number, variant: variant}}
    else
      _ -> {:error, :invalid_sku}
    end
  end

  def parse(_other), do: {:error, :invalid_sku}

  @doc "Returns true when `sku` is a well-formed SKU string."
  @spec valid?(term()) :: boolean()
  def valid?(sku) when is_binary(sku), do: match?({:ok, _}, parse(sku))
  def valid?(_sku), do: false

  @doc """
  Cleans up a SKU typed by a human: trims it, upper-cases it and turns
  spaces and underscores into dashes, so `" ks_tee 00042 "` becomes
  `"KS-TEE-00042"`. The result is not validated.
  """
  @spec normalize(String.t()) :: String.t()
  def normalize(raw) when is_binary(raw) do
    raw
    |> String.trim()
    |> String.upcase()
    |> String.replace(~r/[\s_]+/, "-")
  end

  @doc "Renders parsed SKU parts back into the canonical string form."
  @spec format(t()) :: String.t()
  def format(%__MODULE__{category: category, number: number, variant: variant}) do
    base = "KS-" <> category <> "-" <> String.pad_leading(Integer.to_string(number), 5, "0")
    if variant, do: base <> "-" <> variant, else: base
  end

  defp split_number(rest) do
    case String.split(rest, "-", parts: 2) do
      [digits] -> with {:ok, n} <- parse_digits(digits), do: {:ok, n, nil}
      [digits, variant] -> parse_with_variant(digits, variant)
    end
  end

  defp parse_with_variant(digits, variant) do
    if Regex.match?(@variant_pattern, variant) do
      with {:ok, n} <- parse_digits(digits), do: {:ok, n, variant}
    else
      :error
    end
  end

  defp parse_digits(<<_::binary-size(5)>> = digits) do
    case Integer.parse(digits) do
      {n, ""} when n >= 0 -> {:ok, n}
      _ -> :error
    end
  end

  defp parse_digits(_digits), do: :error

  defp upper_alpha?(chars), do: chars =~ ~r/^[A-Z]{3}$/

  defimpl String.Chars do
    def to_string(sku), do: KinShop.Parsers.Sku.format(sku)
  end
end
