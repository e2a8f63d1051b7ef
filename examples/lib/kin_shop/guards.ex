defmodule KinShop.Guards do
  @moduledoc """
  Guards and small macros shared across the contexts. Use
  `import KinShop.Guards` to make them available in function heads.
  """

  @doc "Holds for a three-letter currency code binary such as `\"EUR\"`."
  defguard is_currency(code) when is_binary(code) and byte_size(code) == 3

  @doc "Holds for an order-line quantity: an integer from 1 to 10 000."
  defguard is_quantity(qty) when is_integer(qty) and qty > 0 and qty <= 10_000

  @doc "Holds for a positive integer database id."
  defguard is_id(id) when is_integer(id) and id > 0

  @doc "Holds for a discount in basis points, from 0 (none) to 10 000 (free)."
  defguard is_basis_points(bp) when is_integer(bp) and bp >= 0 and bp <= 10_000

  @doc """
  Wraps `block` in a `:telemetry.span/3` named `[:kin_shop | event]`, so
  the block emits `:start`, `:stop` and `:exception` events with its
  duration. `metadata` is evaluated once and attached to every event.

      with_span [:orders, :place], %{customer: email} do
        do_place(attrs)
      end
  """
  defmacro with_span(event, metadata, do: block) do
    quote do
      span_meta = unquote(metadata)

      :telemetry.span([:kin_shop | unquote(event)], span_meta, fn ->
        {unquote(block), span_meta}
      end)
    end
  end

  @doc """
  Raises `ArgumentError` with `message` unless `condition` is truthy. The
  message expression is only evaluated when the check fails.
  """
  defmacro ensure!(condition, message) do
    quote do
      unless unquote(condition) do
        raise ArgumentError, unquote(message)
      end

      :ok
    end
  end
end
