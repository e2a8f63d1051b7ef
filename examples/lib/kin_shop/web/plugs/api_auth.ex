defmodule KinShop.Web.Plugs.ApiAuth do
  @moduledoc """
  Authenticates API clients by bearer token and applies per-client rate
  limiting.

  Tokens are looked up in the `:api_keys` application environment map
  (token to client id) with a constant-time comparison. On success the
  client id is assigned as `:client_id`; requests over the client's rate
  limit are answered with 429 and a `retry-after` header.
  """
  @behaviour Plug

  import Plug.Conn

  alias KinShop.RateLimiter

  @doc "Takes `:public_paths`, a list of request paths that need no token."
  @impl true
  def init(opts), do: %{public_paths: Keyword.get(opts, :public_paths, [])}

  @doc "Authenticates and rate-limits `conn`, halting it with 401 or 429 on failure."
  @impl true
  def call(%Plug.Conn{request_path: path} = conn, %{public_paths: public}) do
    if path in public do
      conn
    else
      authenticate(conn)
    end
  end

  defp authenticate(conn) do
    with ["Bearer " <> token] <- get_req_header(conn, "authorization"),
         {:ok, client_id} <- lookup_client(token),
         :ok <- RateLimiter.check(client_id) do
      assign(conn, :client_id, client_id)
    else
      {:error, :rate_limited, retry_after_ms} ->
        conn
        |> put_resp_header("retry-after", Integer.to_string(div(retry_after_ms + 999, 1000)))
        |> reject(429, "rate limit exceeded")

      _missing_or_unknown ->
        conn
        |> put_resp_header("www-authenticate", ~s(Bearer realm="kin_shop"))
        |> reject(401, "missing or invalid API key")
    end
  end

  defp lookup_client(token) do
    :kin_shop
    |> Application.get_env(:api_keys, %{})
    |> Enum.find_value(:error, fn {known, client_id} ->
      if Plug.Crypto.secure_compare(known, token), do: {:ok, client_id}
    end)
  end

  defp reject(conn, status, message) do
    conn
    |> put_resp_content_type("application/json")
    |> send_resp(status, Jason.encode!(%{error: message}))
    |> halt()
  end
end
