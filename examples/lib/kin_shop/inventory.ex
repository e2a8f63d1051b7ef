defmodule KinShop.Inventory do
  @moduledoc """
  The inventory context: products, stock levels and reservations.

  Reservations are made under a row lock (`SELECT ... FOR UPDATE`), so two
  orders competing for the last unit are serialised by the database and
  exactly one of them wins. Reads of the available quantity go through
  `KinShop.Inventory.Cache`.
  """
  import Ecto.Query
  import KinShop.Guards

  alias KinShop.Inventory.{Cache, Product}
  alias KinShop.{Pagination, Repo}

  @doc "Fetches an active or inactive product by its SKU, or `nil`."
  @spec get_product_by_sku(String.t()) :: Product.t() | nil
  def get_product_by_sku(sku) when is_binary(sku), do: Repo.get_by(Product, sku: sku)

  @doc """
  Loads all products whose SKU is in `skus` with a single query and returns
  them as a map from SKU to product. Missing SKUs are simply absent.
  """
  @spec get_products_by_sku([String.t()]) :: %{String.t() => Product.t()}
  def get_products_by_sku([]), do: %{}

  def get_products_by_sku(skus) when is_list(skus) do
    from(p in Product, where: p.sku in ^skus)
    |> Repo.all()
    |> Map.new(&{&1.sku, &1})
  end

  @doc "Lists active products ordered by name, one page at a time."
  @spec list_products(Pagination.params()) :: Pagination.t()
  def list_products(page_params) do
    from(p in Product, where: p.active, order_by: [asc: p.name, asc: p.id])
    |> Pagination.paginate(page_params)
  end

  @doc "Creates a product from admin input; see `KinShop.Inventory.Product.changeset/2`."
  @spec create_product(map()) :: {:ok, Product.t()} | {:error, Ecto.Changeset.t()}
  def create_product(attrs) do
    %Product{}
    |> Product.changeset(attrs)
    |> Repo.insert()
  end

  @doc """
  Returns how many units of `sku` can still be sold, answering from the
  cache when possible and falling back to the database otherwise.
  """
  @spec available(String.t()) :: {:ok, non_neg_integer()} | {:error, :unknown_sku}
  def available(sku) when is_binary(sku) do
    Cache.fetch(sku, fn sku ->
      case get_product_by_sku(sku) do
        nil -> {:error, :unknown_sku}
        product -> {:ok, Product.available(product)}
      end
    end)
  end

  @doc """
  Reserves `quantity` units of the product with `sku` for an order. The
  product row is locked for the duration of the transaction; the call
  fails with `{:error, :out_of_stock}` when fewer units are available and
  with `{:error, :unknown_sku}` when no active product has that SKU.
  """
  @spec reserve(String.t(), pos_integer()) ::
          {:ok, Product.t()} | {:error, :out_of_stock | :unknown_sku | Ecto.Changeset.t()}
  def reserve(sku, quantity) when is_binary(sku) and is_quantity(quantity) do
    result =
      Repo.transact(fn ->
        case Repo.one(from(p in Product, where: p.sku == ^sku and p.active, lock: "FOR UPDATE")) do
          nil ->
            {:error, :unknown_sku}

          %Product{} = product ->
            if Product.available(product) >= quantity do
              product
              |> Product.stock_changeset(%{reserved: product.reserved + quantity})
              |> Repo.update()
            else
              {:error, :out_of_stock}
            end
        end
      end)

    with {:ok, _product} <- result, do: Cache.invalidate(sku)
    result
  end

  @doc """
  Gives back `quantity` previously reserved units of `sku`, for example
  when an order is cancelled. The reservation never drops below zero.
  """
  @spec release(String.t(), pos_integer()) :: :ok | {:error, :unknown_sku}
  def release(sku, quantity) when is_binary(sku) and is_quantity(quantity) do
    query =
      from p in Product,
        where: p.sku == ^sku,
        update: [set: [reserved: fragment("GREATEST(? - ?, 0)", p.reserved, ^quantity)]]

    case Repo.update_all(query, []) do
      {1, _} -> Cache.invalidate(sku)
      {0, _} -> {:error, :unknown_sku}
    end
  end

  @doc "Adds `quantity` freshly received units to the stock of `sku`."
  @spec restock(String.t(), pos_integer()) :: :ok | {:error, :unknown_sku}
  def restock(sku, quantity) when is_binary(sku) and is_quantity(quantity) do
    query = from(p in Product, where: p.sku == ^sku, update: [inc: [stock: ^quantity]])

    case Repo.update_all(query, []) do
      {1, _} -> Cache.invalidate(sku)
      {0, _} -> {:error, :unknown_sku}
    end
  end

  @doc """
  Overwrites on-hand stock with the levels reported by the warehouse, given
  as `{sku, quantity}` pairs, and returns how many products were updated.
  Unknown SKUs are skipped; reservations are left as they are.
  """
  @spec apply_stock_levels([{String.t(), non_neg_integer()}]) :: non_neg_integer()
  def apply_stock_levels(levels) when is_list(levels) do
    {:ok, updated} =
      Repo.transaction(fn ->
        Enum.reduce(levels, 0, fn {sku, qty}, count ->
          query = from(p in Product, where: p.sku == ^sku and p.reserved <= ^qty)
          {n, _} = Repo.update_all(query, set: [stock: qty, updated_at: DateTime.truncate(DateTime.utc_now(), :second)])
          count + n
        end)
      end)

    Enum.each(levels, fn {sku, _qty} -> Cache.invalidate(sku) end)
    updated
  end
end
