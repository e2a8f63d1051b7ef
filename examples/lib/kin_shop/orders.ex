defmodule KinShop.Orders do
  @moduledoc """
  The orders context: placing, reading, updating and cancelling orders.

  Placing an order prices every line from the catalogue (client-supplied
  prices are ignored), reserves stock for each line and inserts the order
  in a single transaction, so an order either exists with all of its stock
  reserved or does not exist at all.
  """
  import Ecto.Query
  import KinShop.Guards

  alias Ecto.Changeset
  alias Ecto.Multi
  alias KinShop.{Inventory, Pagination, Repo}
  alias KinShop.Orders.{Order, OrderLine, Pricing}

  @type place_error ::
          {:error, Changeset.t()}
          | {:error, :out_of_stock | :unknown_sku | :mixed_currency, String.t()}
          | {:error, {atom(), term()}}

  @doc """
  Lists orders newest first, one page at a time. `filters` may contain
  `:status`, `:customer_email` and `:since` (a `DateTime`); unknown keys
  are ignored so query parameters can be passed through as they are.
  """
  @spec list_orders(Pagination.params(), map()) :: Pagination.t()
  def list_orders(page_params, filters \\ %{}) do
    Order
    |> apply_filters(filters)
    |> order_by([o], desc: o.inserted_at, desc: o.id)
    |> preload(:lines)
    |> Pagination.paginate(page_params)
  end

  @doc "Fetches an order with its lines, or returns `nil` when there is none with that id."
  @spec get_order(pos_integer()) :: Order.t() | nil
  def get_order(id) when is_id(id) do
    Order |> Repo.get(id) |> Repo.preload(:lines)
  end

  @doc "Like `get_order/1` but raises `Ecto.NoResultsError` when the order does not exist."
  @spec get_order!(pos_integer()) :: Order.t()
  def get_order!(id) when is_id(id) do
    Order |> Repo.get!(id) |> Repo.preload(:lines)
  end

  @doc """
  Places an order from request attributes (string or atom keys).

  Each line must name a `sku` and a `quantity`. Lines are priced from the
  catalogue, the order total is computed after the order-level discount,
  and stock is reserved for every line inside the same transaction.

  Returns `{:ok, order}`, `{:error, changeset}` for invalid input, or
  `{:error, reason, sku}` when a SKU is unknown, inactive, out of stock or
  priced in a different currency than the other lines.
  """
  @spec place_order(map(), keyword()) :: {:ok, Order.t()} | place_error()
  def place_order(attrs, opts \\ []) when is_map(attrs) do
    attrs = stringify_keys(attrs)
    raw_lines = Map.get(attrs, "lines", [])

    with_span [:orders, :place], %{line_count: length(raw_lines)} do
      skus =
        raw_lines
        |> Enum.map(&Map.get(&1, "sku"))
        |> Enum.reject(&is_nil/1)
        |> Enum.uniq()

      products = Inventory.get_products_by_sku(skus)

      case Pricing.price_lines(raw_lines, products) do
        {:error, _reason, _sku} = error ->
          error

        {:ok, priced_lines, currency} ->
          changeset =
            attrs
            |> Map.put("lines", priced_lines)
            |> Map.put_new("currency", currency)
            |> Map.put("customer_id", Keyword.get(opts, :customer_id))
            |> then(&Order.changeset(%Order{}, &1))
            |> Pricing.put_total()

          multi =
            Multi.new()
            |> Multi.insert(:order, changeset)
            |> Multi.run(:reservations, fn _repo, %{order: order} -> reserve_all(order.lines) end)

          case Repo.transaction(multi) do
            {:ok, %{order: order}} ->
              Enum.each(skus, &Inventory.Cache.invalidate/1)
              :kin_event_log.log(:order_placed, %{id: order.id, total_cents: order.total_cents})
              KinShop.Metrics.Collector.increment("orders.placed")
              {:ok, order}

            {:error, :order, %Changeset{} = invalid, _changes} ->
              {:error, invalid}

            {:error, :reservations, {reason, sku}, _changes} ->
              {:error, reason, sku}

            {:error, step, reason, _changes} ->
              {:error, {step, reason}}
          end
      end
    end
  end

  @doc """
  Moves `order` to `status`, with the extra fields that transition needs
  (`payment_ref` for `:paid`, `tracking_code` for `:shipped`).
  """
  @spec update_order_status(Order.t(), Order.status(), map()) ::
          {:ok, Order.t()} | {:error, Changeset.t()}
  def update_order_status(%Order{} = order, status, attrs \\ %{}) do
    order
    |> Order.status_changeset(status, attrs)
    |> Repo.update()
  end

  @doc """
  Cancels a pending or paid order and releases the stock its lines had
  reserved. Refunding a paid order is a separate step handled by the
  payment gateway.
  """
  @spec cancel_order(Order.t()) :: {:ok, Order.t()} | {:error, term()}
  def cancel_order(%Order{} = order) do
    order = Repo.preload(order, :lines)

    Repo.transact(fn ->
      with {:ok, cancelled} <- update_order_status(order, :cancelled),
           :ok <- release_all(order.lines) do
        {:ok, cancelled}
      end
    end)
  end

  @doc """
  Deletes an order that was created by mistake. Only pending orders without
  a payment reference can be deleted; everything else must be cancelled so
  that the audit trail is kept.
  """
  @spec delete_order(Order.t()) :: {:ok, Order.t()} | {:error, :not_deletable | Changeset.t()}
  def delete_order(%Order{status: :pending, payment_ref: nil} = order) do
    with {:ok, deleted} <- cancel_order(order), do: Repo.delete(deleted)
  end

  def delete_order(%Order{}), do: {:error, :not_deletable}

  defp apply_filters(query, filters) do
    Enum.reduce(filters, query, fn
      {:status, status}, q -> where(q, [o], o.status == ^status)
      {:customer_email, email}, q -> where(q, [o], o.customer_email == ^String.downcase(email))
      {:since, %DateTime{} = since}, q -> where(q, [o], o.inserted_at >= ^since)
      _unknown, q -> q
    end)
  end

  defp reserve_all(lines) do
    Enum.reduce_while(lines, {:ok, []}, fn %OrderLine{sku: sku, quantity: qty}, {:ok, acc} ->
      case Inventory.reserve(sku, qty) do
        {:ok, product} -> {:cont, {:ok, [product.id | acc]}}
        {:error, reason} when is_atom(reason) -> {:halt, {:error, {reason, sku}}}
        {:error, %Changeset{}} -> {:halt, {:error, {:out_of_stock, sku}}}
      end
    end)
  end

  defp release_all(lines) do
    Enum.each(lines, fn %OrderLine{sku: sku, quantity: qty} -> :ok = Inventory.release(sku, qty) end)
  end

  defp stringify_keys(map) when is_map(map) do
    Map.new(map, fn
      {key, value} when is_atom(key) -> {Atom.to_string(key), stringify_value(value)}
      {key, value} -> {key, stringify_value(value)}
    end)
  end

  defp stringify_value(list) when is_list(list), do: Enum.map(list, &stringify_value/1)
  defp stringify_value(%_{} = struct), do: struct
  defp stringify_value(map) when is_map(map), do: stringify_keys(map)
  defp stringify_value(value), do: value
end
