defmodule KinShop.Orders.OrderLine do
  @moduledoc """
  One line of an order: a product, a quantity and the unit price that was
  current when the order was placed. The SKU and price are copied onto the
  line so later catalogue changes do not rewrite order history.
  """
  use Ecto.Schema

  import Ecto.Changeset

  @type t :: %__MODULE__{}

  @max_quantity 100

  schema "order_lines" do
    field :sku, :string
    field :quantity, :integer
    field :unit_price_cents, :integer

    belongs_to :order, KinShop.Orders.Order
    belongs_to :product, KinShop.Inventory.Product

    timestamps(type: :utc_datetime, updated_at: false)
  end

  @doc """
  Casts a line from request input. Only `sku` and `quantity` come from the
  client; `product_id` and `unit_price_cents` are filled in from the
  catalogue by `KinShop.Orders.place_order/2`.
  """
  @spec changeset(t(), map()) :: Ecto.Changeset.t()
  def changeset(line, attrs) do
    line
    |> cast(attrs, [:sku, :quantity, :product_id, :unit_price_cents])
    |> validate_required([:sku, :quantity])
    |> validate_number(:quantity, greater_than: 0, less_than_or_equal_to: @max_quantity)
    |> validate_number(:unit_price_cents, greater_than_or_equal_to: 0)
    |> foreign_key_constraint(:product_id)
  end

  @doc "Returns the line total in cents: unit price times quantity."
  @spec total_cents(t()) :: non_neg_integer()
  def total_cents(%__MODULE__{quantity: qty, unit_price_cents: price})
      when is_integer(qty) and is_integer(price) do
    qty * price
  end
end
