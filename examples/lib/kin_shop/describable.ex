defprotocol KinShop.Describable do
  @moduledoc """
  One-line, human-readable descriptions of domain values, used in log
  lines, admin notifications and the CLI. Unlike `Inspect` the output is
  meant for shop staff, not developers.
  """
  @fallback_to_any true

  @doc "Returns a short description of `value`, without a trailing period."
  @spec describe(t()) :: String.t()
  def describe(value)
end

defimpl KinShop.Describable, for: KinShop.Money do
  def describe(money), do: KinShop.Money.format(money)
end

defimpl KinShop.Describable, for: KinShop.Orders.Order do
  def describe(%{id: id, status: status, lines: lines} = order) when is_list(lines) do
    total = KinShop.Money.new(order.total_cents, order.currency)
    units = Enum.reduce(lines, 0, &(&1.quantity + &2))
    "Order ##{id} (#{status}): #{units} item(s), #{KinShop.Money.format(total)}"
  end

  def describe(%{id: id, status: status}), do: "Order ##{id} (#{status})"
end

defimpl KinShop.Describable, for: KinShop.Inventory.Product do
  def describe(product) do
    price = KinShop.Money.new(product.price_cents, product.currency)
    "#{product.name} [#{product.sku}] at #{KinShop.Money.format(price)}, #{product.stock} in stock"
  end
end

defimpl KinShop.Describable, for: Any do
  def describe(value), do: inspect(value, limit: 5, printable_limit: 60)
end
