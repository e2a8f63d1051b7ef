defmodule KinShop.Inventory.Product do
  @moduledoc """
  A sellable article. `stock` is what is physically on hand and `reserved`
  is what open orders have claimed but not shipped yet; the difference is
  what can still be sold. A database check constraint guarantees that
  `reserved` never exceeds `stock`.
  """
  use Ecto.Schema

  import Ecto.Changeset

  alias KinShop.Parsers.Sku

  @type t :: %__MODULE__{}

  @currencies ~w(EUR USD GBP)

  schema "products" do
    field :sku, :string
    field :name, :string
    field :description, :string
    field :price_cents, :integer
    field :currency, :string, default: "EUR"
    field :stock, :integer, default: 0
    field :reserved, :integer, default: 0
    field :active, :boolean, default: true

    timestamps(type: :utc_datetime)
  end

  @doc """
  Changeset for creating or editing a product from admin input. The SKU is
  normalised before it is validated, and must be unique.
  """
  @spec changeset(t(), map()) :: Ecto.Changeset.t()
  def changeset(product, attrs) do
    product
    |> cast(attrs, [:sku, :name, :description, :price_cents, :currency, :stock, :active])
    |> validate_required([:sku, :name, :price_cents])
    |> update_change(:sku, &Sku.normalize/1)
    |> validate_change(:sku, fn :sku, sku ->
      if Sku.valid?(sku), do: [], else: [sku: "is not a valid SKU"]
    end)
    |> validate_length(:name, min: 2, max: 120)
    |> validate_number(:price_cents, greater_than_or_equal_to: 0)
    |> validate_number(:stock, greater_than_or_equal_to: 0)
    |> validate_inclusion(:currency, @currencies)
    |> unique_constraint(:sku)
  end

  @doc """
  Changeset for stock movements only. It casts nothing but `stock` and
  `reserved` and rejects a reservation larger than the stock on hand.
  """
  @spec stock_changeset(t(), map()) :: Ecto.Changeset.t()
  def stock_changeset(product, attrs) do
    product
    |> cast(attrs, [:stock, :reserved])
    |> validate_number(:stock, greater_than_or_equal_to: 0)
    |> validate_number(:reserved, greater_than_or_equal_to: 0)
    |> validate_reserved_within_stock()
    |> check_constraint(:reserved, name: :reserved_within_stock)
  end

  @doc "Returns the units that can still be sold: stock minus reservations, never negative."
  @spec available(t()) :: non_neg_integer()
  def available(%__MODULE__{stock: stock, reserved: reserved}), do: max(stock - reserved, 0)

  defp validate_reserved_within_stock(changeset) do
    stock = get_field(changeset, :stock)
    reserved = get_field(changeset, :reserved)

    if reserved > stock do
      add_error(changeset, :reserved, "cannot exceed stock of %{stock}", stock: stock)
    else
      changeset
    end
  end
end
