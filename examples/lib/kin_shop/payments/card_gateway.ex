defmodule KinShop.Payments.CardGateway do
  @moduledoc """
  Card payments through an external processor's JSON API.

  Every request carries an idempotency key derived from the operation and
  its inputs, so a retried request after a timeout can never charge the
  customer twice.
  """
  @behaviour KinShop.Payments.Gateway

  require Logger

  alias KinShop.{HTTP, Money}

  @impl true
  def authorize(%Money{} = amount, %{"card_token" => token} = details) when is_binary(token) do
    body = %{
      amount: amount.cents,
      currency: String.downcase(amount.currency),
      source: token,
      capture: false,
      description: Map.get(details, "description", "KinShop order")
    }

    case request("/authorizations", body, idempotency_key(["auth", token, amount.cents])) do
      {:ok, %{"id" => id, "status" => "authorized"}} ->
        {:ok, %{reference: id, amount: amount, gateway: __MODULE__}}

      {:ok, %{"status" => "declined", "decline_code" => code}} ->
        {:error, {:declined, code}}

      {:error, _reason} = error ->
        error
    end
  end

  def authorize(_amount, _details), do: {:error, :missing_card_token}

  @impl true
  def capture(%{reference: reference, amount: amount}) do
    path = "/authorizations/#{reference}/capture"

    with {:ok, %{"id" => id, "captured_at" => at}} <-
           request(path, %{amount: amount.cents}, idempotency_key(["capture", reference])),
         {:ok, captured_at, _offset} <- DateTime.from_iso8601(at) do
      {:ok, %{reference: id, captured_at: captured_at}}
    end
  end

  @impl true
  def refund(reference, %Money{cents: cents}) when cents > 0 do
    body = %{charge: reference, amount: cents}

    case request("/refunds", body, idempotency_key(["refund", reference, cents])) do
      {:ok, %{"status" => status}} when status in ["pending", "succeeded"] -> :ok
      {:ok, other} -> {:error, {:unexpected_response, other}}
      {:error, _reason} = error -> error
    end
  end

  @impl true
  def supports_currency?(currency), do: currency in config(:currencies, ["EUR"])

  @doc """
  Builds a deterministic idempotency key from the parts of a request, so
  the same logical operation always sends the same key.
  """
  @spec idempotency_key([term()]) :: String.t()
  def idempotency_key(parts) when is_list(parts) do
    parts
    |> Enum.map_join(":", &to_string/1)
    |> then(&:crypto.hash(:sha256, &1))
    |> Base.url_encode64(padding: false)
  end

  defp request(path, body, key) do
    headers = [
      {"authorization", "Bearer " <> config(:api_key, "")},
      {"idempotency-key", key}
    ]

    case HTTP.post_json(config(:endpoint, "") <> path, body, headers) do
      {:ok, %{status: status, body: decoded}} when status in 200..299 and is_map(decoded) ->
        {:ok, decoded}

      {:ok, %{status: 402, body: decoded}} when is_map(decoded) ->
        {:ok, decoded}

      {:ok, %{status: status}} ->
        Logger.warning("card processor answered #{status} for #{path}")
        {:error, {:http_status, status}}

      {:error, reason} ->
        {:error, {:transport, reason}}
    end
  end

  defp config(key, default) do
    :kin_shop
    |> Application.get_env(__MODULE__, [])
    |> Keyword.get(key, default)
  end
end
