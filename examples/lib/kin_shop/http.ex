defmodule KinShop.HTTP do
  @moduledoc """
  Minimal JSON-over-HTTP client built on `:httpc`, used for webhooks, the
  card gateway and the warehouse API. Responses are normalised into
  `%{status: integer, headers: list, body: term}` maps; JSON bodies are
  decoded, anything else is returned as a binary.
  """

  @type response :: %{status: pos_integer(), headers: [{String.t(), String.t()}], body: term()}

  @http_opts [timeout: 5_000, connect_timeout: 2_000]

  @doc """
  Sends `payload` encoded as JSON to `url` with a POST request and returns
  the decoded response. Extra `headers` are given as string pairs.
  """
  @spec post_json(String.t(), term(), [{String.t(), String.t()}]) :: {:ok, response()} | {:error, term()}
  def post_json(url, payload, headers \\ []) do
    request = {String.to_charlist(url), to_charlists(headers), ~c"application/json", Jason.encode!(payload)}

    :post
    |> :httpc.request(request, @http_opts, body_format: :binary)
    |> normalize()
  end

  @doc "Fetches `url` with a GET request and decodes a JSON body if there is one."
  @spec get_json(String.t(), [{String.t(), String.t()}]) :: {:ok, response()} | {:error, term()}
  def get_json(url, headers \\ []) do
    request = {String.to_charlist(url), [{~c"accept", ~c"application/json"} | to_charlists(headers)]}

    :get
    |> :httpc.request(request, @http_opts, body_format: :binary)
    |> normalize()
  end

  defp normalize({:ok, {{_version, status, _reason}, headers, body}}) do
    headers = Enum.map(headers, fn {k, v} -> {List.to_string(k), List.to_string(v)} end)
    {:ok, %{status: status, headers: headers, body: decode_body(headers, body)}}
  end

  defp normalize({:error, reason}), do: {:error, reason}

  defp decode_body(headers, body) do
    json? =
      Enum.any?(headers, fn {name, value} ->
        String.downcase(name) == "content-type" and String.contains?(value, "json")
      end)

    with true <- json?, {:ok, decoded} <- Jason.decode(body) do
      decoded
    else
      _ -> body
    end
  end

  defp to_charlists(headers) do
    Enum.map(headers, fn {k, v} -> {String.to_charlist(k), String.to_charlist(v)} end)
  end
end
