defmodule KinShop.Orders.Pricing do
  @moduledoc """
  Prices order input against the catalogue.

  Client-supplied prices are never trusted: every line gets its product id
  and current unit price from the product it names, and the order total is
  computed here from those prices and the order-level discount.
  """
  alias Ecto.Changeset
  alias KinShop.Inventory.Product
  alias KinShop.Money

  @doc """
  Fills in `"product_id"` and `"unit_price_cents"` on each raw, string-keyed
  line from `products`, a map of SKU to product. All lines must share one
  currency, which is returned alongside the lines (`"EUR"` for no lines).
  Stops at the first line whose SKU is unknown or inactive.
  """
  @spec price_lines([map()], %{String.t() => Product.t()}) ::
          {:ok, [map()], String.t()} | {:error, :unknown_sku | :mixed_currency, String.t()}
  def price_lines(raw_lines, products) when is_list(raw_lines) and is_map(products) do
    raw_lines
    |> Enum.reduce_while({:ok, [], nil}, fn line, {:ok, acc, currency} ->
      sku = Map.get(line, "sku")

      case Map.fetch(products, sku) do
        {:ok, %Product{active: true, currency: line_currency} = product} ->
          if currency in [nil, line_currency] do
            priced = Map.merge(line, %{"product_id" => product.id, "unit_price_cents" => product.price_cents})
            {:cont, {:ok, [priced | acc], line_currency}}
          else
            {:halt, {:error, :mixed_currency, sku}}
          end

        _inactive_or_missing ->
          {:halt, {:error, :unknown_sku, sku}}
      end
    end)
    |> case do
      {:ok, lines, currency} -> {:ok, Enum.reverse(lines), currency || "EUR"}
      error -> error
    end
  end

  @doc """
  Sums the line changesets of an order changeset, applies the order's
  `discount_bp` and puts the result into `total_cents`. Incomplete lines
  count as zero here; the line validations reject them anyway.
  """
  @spec put_total(Changeset.t()) :: Changeset.t()
  def put_total(%Changeset{} = changeset) do
    currency = Changeset.get_field(changeset, :currency)
    discount_bp = Changeset.get_field(changeset, :discount_bp) || 0

    subtotal =
      changeset
      |> Changeset.get_change(:lines, [])
      |> Enum.map(&line_subtotal/1)
      |> Enum.sum()

    total = subtotal |> Money.new(currency) |> Money.apply_discount(discount_bp)
    Changeset.put_change(changeset, :total_cents, total.cents)
  end

  defp line_subtotal(%Changeset{} = line) do
    case {Changeset.get_field(line, :quantity), Changeset.get_field(line, :unit_price_cents)} do
      {qty, price} when is_integer(qty) and is_integer(price) -> qty * price
      _incomplete -> 0
    end
  end
end
