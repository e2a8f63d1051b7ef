defmodule KinShop.Web.OrderJSON do
  @moduledoc """
  JSON representation of orders for the HTTP API. Amounts are sent both
  as integer cents, for machines, and formatted, for people.
  """
  alias KinShop.Money
  alias KinShop.Orders.Order

  @doc """
  Renders an order as the map the API encodes. Lines are included when
  they are preloaded and rendered as `nil` otherwise, never fetched here.
  """
  @spec render(Order.t()) :: map()
  def render(%Order{} = order) do
    %{
      id: order.id,
      status: order.status,
      customer_email: order.customer_email,
      total: Money.format(Money.new(order.total_cents, order.currency)),
      total_cents: order.total_cents,
      currency: order.currency,
      tracking_code: order.tracking_code,
      lines: render_lines(order.lines),
      inserted_at: order.inserted_at
    }
  end

  @doc "Renders a page of orders as a list of JSON maps."
  @spec render_many([Order.t()]) :: [map()]
  def render_many(orders) when is_list(orders), do: Enum.map(orders, &render/1)

  defp render_lines(%Ecto.Association.NotLoaded{}), do: nil

  defp render_lines(lines) do
    Enum.map(lines, fn line ->
      %{sku: line.sku, quantity: line.quantity, unit_price_cents: line.unit_price_cents}
    end)
  end
end
