defmodule KinShop do
  @moduledoc """
  Public facade for the KinShop order and inventory service.

  Most callers only need the functions in this module. They delegate to the
  `KinShop.Orders` and `KinShop.Inventory` contexts and to `KinShop.Money`,
  so web handlers and release scripts do not depend on the internal module
  layout, which is free to change.
  """

  @doc """
  Places a new order for a customer and reserves stock for every line.

  See `KinShop.Orders.place_order/2` for the accepted attributes and the
  possible error tuples.
  """
  defdelegate place_order(attrs, opts \\ []), to: KinShop.Orders

  @doc """
  Reserves `quantity` units of the product identified by `sku`, failing with
  `{:error, :out_of_stock}` when fewer units are available.
  """
  defdelegate reserve_stock(sku, quantity), to: KinShop.Inventory, as: :reserve

  @doc """
  Formats a `KinShop.Money` struct as a human-readable string such as
  `"€1,299.00"`.
  """
  defdelegate format_money(money), to: KinShop.Money, as: :format

  @doc """
  Returns the version of the running `:kin_shop` application, or
  `"0.0.0-dev"` when the application specification is not loaded (for
  example in a bare `mix run` script).
  """
  @spec version() :: String.t()
  def version do
    case Application.spec(:kin_shop, :vsn) do
      nil -> "0.0.0-dev"
      vsn -> List.to_string(vsn)
    end
  end
end
