defmodule KinShop.Payments.Gateway do
  @moduledoc """
  Behaviour for payment gateways, plus the dispatch functions that the
  rest of the application calls.

  A payment is two-phase: `c:authorize/2` reserves the amount with the
  provider and `c:capture/1` actually collects it. Every call goes through
  the `:payment_breaker` circuit breaker (see `src/kin_circuit_breaker.erl`)
  so that an outage at the provider fails fast instead of tying up order
  workers for the full HTTP timeout.
  """
  alias KinShop.Money

  @type authorization :: %{
          required(:reference) => String.t(),
          required(:amount) => Money.t(),
          required(:gateway) => module(),
          optional(atom()) => term()
        }

  @type capture :: %{reference: String.t(), captured_at: DateTime.t()}

  @doc "Reserves `amount` with the provider using customer-supplied `details`."
  @callback authorize(amount :: Money.t(), details :: map()) ::
              {:ok, authorization()} | {:error, term()}

  @doc "Collects a previously authorised amount."
  @callback capture(authorization()) :: {:ok, capture()} | {:error, term()}

  @doc "Returns `amount` (all or part of a captured payment) to the customer."
  @callback refund(reference :: String.t(), amount :: Money.t()) :: :ok | {:error, term()}

  @doc "Tells whether the gateway can charge in the given currency."
  @callback supports_currency?(currency :: String.t()) :: boolean()

  @optional_callbacks supports_currency?: 1

  @doc """
  Returns the gateway module configured under `:payment_gateway`, falling
  back to `KinShop.Payments.CardGateway`.
  """
  @spec impl() :: module()
  def impl, do: Application.get_env(:kin_shop, :payment_gateway, KinShop.Payments.CardGateway)

  @doc """
  Authorises payment of an order's total with the configured gateway.
  Fails with `{:error, {:unsupported_currency, code}}` before contacting
  the provider when the gateway declares it cannot charge that currency.
  """
  @spec authorize(%{total_cents: integer(), currency: String.t()}, map()) ::
          {:ok, authorization()} | {:error, term()}
  def authorize(%{total_cents: cents, currency: currency}, details) do
    gateway = impl()

    if supports?(gateway, currency) do
      amount = Money.new(cents, currency)
      protected(fn -> gateway.authorize(amount, details) end)
    else
      {:error, {:unsupported_currency, currency}}
    end
  end

  @doc "Captures an authorisation with the gateway that issued it."
  @spec capture(authorization()) :: {:ok, capture()} | {:error, term()}
  def capture(%{gateway: gateway} = authorization) do
    protected(fn -> gateway.capture(authorization) end)
  end

  @doc "Refunds `amount` of the payment identified by `reference`."
  @spec refund(module(), String.t(), Money.t()) :: :ok | {:error, term()}
  def refund(gateway, reference, %Money{} = amount) do
    protected(fn -> gateway.refund(reference, amount) end)
  end

  defp protected(fun), do: :kin_circuit_breaker.call(:payment_breaker, fun)

  defp supports?(gateway, currency) do
    Code.ensure_loaded?(gateway) and
      (not function_exported?(gateway, :supports_currency?, 1) or gateway.supports_currency?(currency))
  end
end
