defmodule KinShop.Payments.InvoiceGateway do
  @moduledoc """
  Pay-by-invoice for business customers. No external provider is involved:
  authorising checks the customer's open balance against a credit limit
  and capturing issues the invoice with a due date.

  Open balances are kept in the public ETS table `:kin_invoice_balances`,
  created on first use. That is good enough for a demo; a real shop would
  keep them in the database.
  """
  @behaviour KinShop.Payments.Gateway

  alias KinShop.Money

  @table :kin_invoice_balances

  @impl true
  def authorize(%Money{currency: "EUR"} = amount, %{"customer_id" => customer} = _details) do
    ensure_table()
    open = open_balance(customer)
    limit = config(:credit_limit_cents, 500_000)

    if open + amount.cents <= limit do
      :ets.update_counter(@table, customer, {2, amount.cents}, {customer, 0})
      {:ok, %{reference: invoice_number(customer), amount: amount, gateway: __MODULE__, customer: customer}}
    else
      {:error, {:credit_limit_exceeded, limit - open}}
    end
  end

  def authorize(%Money{currency: currency}, _details) when currency != "EUR" do
    {:error, {:unsupported_currency, currency}}
  end

  def authorize(_amount, _details), do: {:error, :missing_customer_id}

  @impl true
  def capture(%{reference: reference}) do
    {:ok, %{reference: reference, captured_at: DateTime.utc_now()}}
  end

  @impl true
  def refund("INV-" <> rest = _reference, %Money{cents: cents}) when cents > 0 do
    ensure_table()

    case String.split(rest, "-", parts: 2) do
      [customer, _serial] ->
        :ets.update_counter(@table, customer, {2, -cents}, {customer, 0})
        :ok

      _malformed ->
        {:error, :unknown_invoice}
    end
  end

  def refund(_reference, _amount), do: {:error, :unknown_invoice}

  @impl true
  def supports_currency?(currency), do: currency == "EUR"

  @doc """
  Returns the invoiced but unpaid amount of `customer` in cents, or 0 for
  a customer who has never been invoiced.
  """
  @spec open_balance(String.t()) :: non_neg_integer()
  def open_balance(customer) when is_binary(customer) do
    ensure_table()

    case :ets.lookup(@table, customer) do
      [{^customer, cents}] -> cents
      [] -> 0
    end
  end

  @doc "Returns the date an invoice issued today must be paid by."
  @spec due_date(Date.t()) :: Date.t()
  def due_date(issued_on \\ Date.utc_today()) do
    Date.add(issued_on, config(:payment_terms_days, 30))
  end

  defp invoice_number(customer) do
    serial = System.unique_integer([:positive, :monotonic])
    "INV-#{customer}-#{Integer.to_string(serial, 36)}"
  end

  defp ensure_table do
    if :ets.whereis(@table) == :undefined do
      :ets.new(@table, [:named_table, :public, :set, write_concurrency: true])
    end

    :ok
  rescue
    ArgumentError -> :ok
  end

  defp config(key, default) do
    :kin_shop |> Application.get_env(__MODULE__, []) |> Keyword.get(key, default)
  end
end
