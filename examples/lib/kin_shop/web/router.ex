defmodule KinShop.Web.Router do
  @moduledoc """
  JSON HTTP API of KinShop.

  Every request gets a request id, and everything except `/health` must
  carry a valid API key (see `KinShop.Web.Plugs.ApiAuth`). Request bodies
  are JSON; responses are JSON with an `error` key on failure.
  """
  use Plug.Router

  alias KinShop.{Inventory, Orders, Pagination}
  alias KinShop.Orders.{Order, OrderWorker}
  alias KinShop.Web.OrderJSON
  alias KinShop.Web.Plugs.{ApiAuth, RequestId}

  plug RequestId
  plug :match
  plug ApiAuth, public_paths: ["/health"]
  plug Plug.Parsers, parsers: [:json], pass: ["application/json"], json_decoder: Jason
  plug :dispatch

  get "/health" do
    send_json(conn, 200, %{status: "ok", version: KinShop.version()})
  end

  get "/orders" do
    conn = fetch_query_params(conn)
    page = Orders.list_orders(Pagination.params(conn.query_params), status_filter(conn.query_params))
    send_json(conn, 200, %{data: OrderJSON.render_many(page.entries), meta: Pagination.meta(page)})
  end

  get "/orders/:id" do
    with {:ok, order_id} <- parse_id(id),
         %Order{} = order <- Orders.get_order(order_id) do
      send_json(conn, 200, OrderJSON.render(order))
    else
      :error -> send_json(conn, 400, %{error: "invalid order id"})
      nil -> send_json(conn, 404, %{error: "order not found"})
    end
  end

  post "/orders" do
    case Orders.place_order(conn.body_params, customer_id: conn.assigns.client_id) do
      {:ok, order} ->
        conn
        |> put_resp_header("location", "/orders/#{order.id}")
        |> send_json(201, OrderJSON.render(order))

      {:error, %Ecto.Changeset{} = changeset} ->
        send_json(conn, 422, %{error: "invalid order", details: changeset_errors(changeset)})

      {:error, :out_of_stock, sku} ->
        send_json(conn, 409, %{error: "out of stock", sku: sku})

      {:error, reason, sku} when reason in [:unknown_sku, :mixed_currency] ->
        send_json(conn, 422, %{error: Atom.to_string(reason), sku: sku})

      {:error, reason} ->
        send_json(conn, 500, %{error: "could not place order", reason: inspect(reason)})
    end
  end

  post "/orders/:id/pay" do
    with {:ok, order_id} <- parse_id(id),
         {:ok, order} <- OrderWorker.pay(order_id, conn.body_params) do
      send_json(conn, 200, OrderJSON.render(order))
    else
      :error -> send_json(conn, 400, %{error: "invalid order id"})
      {:error, :not_found} -> send_json(conn, 404, %{error: "order not found"})
      {:error, :invalid_state} -> send_json(conn, 409, %{error: "order is not awaiting payment"})
      {:error, :circuit_open} -> send_json(conn, 503, %{error: "payments temporarily unavailable"})
      {:error, reason} -> send_json(conn, 402, %{error: "payment failed", reason: inspect(reason)})
    end
  end

  post "/orders/:id/cancel" do
    with {:ok, order_id} <- parse_id(id),
         %Order{} = order <- Orders.get_order(order_id),
         {:ok, cancelled} <- Orders.cancel_order(order) do
      send_json(conn, 200, OrderJSON.render(cancelled))
    else
      :error -> send_json(conn, 400, %{error: "invalid order id"})
      nil -> send_json(conn, 404, %{error: "order not found"})
      {:error, %Ecto.Changeset{} = cs} -> send_json(conn, 409, %{error: changeset_errors(cs)})
    end
  end

  get "/products" do
    conn = fetch_query_params(conn)
    page = Inventory.list_products(Pagination.params(conn.query_params))
    data = Enum.map(page.entries, &Map.take(&1, [:sku, :name, :price_cents, :currency]))
    send_json(conn, 200, %{data: data, meta: Pagination.meta(page)})
  end

  get "/products/:sku/stock" do
    case Inventory.available(sku) do
      {:ok, qty} -> send_json(conn, 200, %{sku: sku, available: qty})
      {:error, :unknown_sku} -> send_json(conn, 404, %{error: "unknown sku"})
    end
  end

  match _ do
    send_json(conn, 404, %{error: "not found"})
  end

  defp send_json(conn, status, body) do
    conn
    |> put_resp_content_type("application/json")
    |> send_resp(status, Jason.encode!(body))
  end

  defp parse_id(raw) do
    case Integer.parse(raw) do
      {id, ""} when id > 0 -> {:ok, id}
      _ -> :error
    end
  end

  defp status_filter(%{"status" => status}) do
    case Enum.find(Order.statuses(), &(Atom.to_string(&1) == status)) do
      nil -> %{}
      known -> %{status: known}
    end
  end

  defp status_filter(_params), do: %{}

  defp changeset_errors(changeset) do
    Ecto.Changeset.traverse_errors(changeset, fn {message, opts} ->
      Regex.replace(~r/%{(\w+)}/, message, fn _, key ->
        opts |> Keyword.get(String.to_existing_atom(key), key) |> to_string()
      end)
    end)
  end
end
