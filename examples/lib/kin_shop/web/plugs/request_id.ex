defmodule KinShop.Web.Plugs.RequestId do
  @moduledoc """
  Makes sure every request has an id. A well-formed `x-request-id` header
  sent by a load balancer is reused; otherwise a new random id is made.
  The id is echoed in the response, assigned as `:request_id` and added to
  the Logger metadata so all log lines of one request can be correlated.
  """
  @behaviour Plug

  import Plug.Conn

  require Logger

  @header "x-request-id"
  @valid_id ~r/\A[A-Za-z0-9_\-]{16,64}\z/

  @doc "Accepts `:header` to read and write an id header other than `x-request-id`."
  @impl true
  def init(opts), do: Keyword.get(opts, :header, @header)

  @doc "Assigns the request id and echoes it back as a response header."
  @impl true
  def call(conn, header) do
    id =
      case get_req_header(conn, header) do
        [candidate | _] -> if valid?(candidate), do: candidate, else: generate()
        [] -> generate()
      end

    Logger.metadata(request_id: id)

    conn
    |> assign(:request_id, id)
    |> put_resp_header(header, id)
  end

  @doc "Returns true for ids made only of URL-safe characters, 16 to 64 long."
  @spec valid?(String.t()) :: boolean()
  def valid?(id) when is_binary(id), do: Regex.match?(@valid_id, id)

  @doc "Generates a fresh 20-byte, URL-safe Base64 request id."
  @spec generate() :: String.t()
  def generate do
    20 |> :crypto.strong_rand_bytes() |> Base.url_encode64(padding: false)
  end
end
