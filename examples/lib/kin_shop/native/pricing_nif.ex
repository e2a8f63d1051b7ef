defmodule KinShop.Native.PricingNif do
  @moduledoc """
  Bindings to the C++ pricing engine in `packages/pricing_nif`.

  The engine keeps an immutable price book (unit prices plus bulk-discount
  tiers) in a NIF resource, so quoting a large basket does not copy the
  catalogue across the NIF boundary on every call. `quote_basket/2` runs on
  a dirty CPU scheduler because a basket can have thousands of lines.

  When the shared library is missing the module still loads, every NIF
  function raises `:nif_not_loaded`, and `available?/0` returns false so
  callers can fall back to `KinShop.Money`.
  """

  @on_load :load_nif

  @typedoc "Opaque reference to a price book living in native memory."
  @opaque price_book :: reference()

  @type entry :: {sku :: String.t(), unit_cents :: non_neg_integer(),
                  bulk_threshold :: non_neg_integer(), bulk_discount_bp :: 0..10_000}

  @type quote_line :: {String.t(), pos_integer(), non_neg_integer(), non_neg_integer()}

  @doc false
  def load_nif do
    path =
      :kin_shop
      |> :code.priv_dir()
      |> Path.join("native/pricing_nif")
      |> String.to_charlist()

    case :erlang.load_nif(path, 0) do
      :ok ->
        :ok

      {:error, {reason, text}} ->
        :logger.warning(~c"pricing NIF not loaded (~p): ~s", [reason, text])
        :ok
    end
  end

  @doc """
  Returns true when the native library was loaded and the NIF functions
  can be called.
  """
  @spec available?() :: boolean()
  def available? do
    apply_discount(100, 0) == 100
  rescue
    ErlangError -> false
  end

  @doc """
  Subtracts a discount of `basis_points` (1/100 of a percent) from
  `price_cents`, rounding the discount half up. Same arithmetic as
  `KinShop.Money.apply_discount/2`, done natively.
  """
  @spec apply_discount(non_neg_integer(), 0..10_000) :: non_neg_integer()
  def apply_discount(_price_cents, _basis_points), do: :erlang.nif_error(:nif_not_loaded)

  @doc """
  Builds a price book from a list of `{sku, unit_cents, bulk_threshold,
  bulk_discount_bp}` tuples. Duplicate SKUs make it fail with
  `{:error, {:duplicate_sku, sku}}`.
  """
  @spec new_price_book([entry()]) :: {:ok, price_book()} | {:error, term()}
  def new_price_book(_entries), do: :erlang.nif_error(:nif_not_loaded)

  @doc """
  Returns the effective unit price of `sku` when buying `quantity` units,
  with the bulk discount applied once the quantity reaches the threshold.
  """
  @spec lookup_price(price_book(), String.t(), pos_integer()) ::
          {:ok, non_neg_integer()} | {:error, :unknown_sku}
  def lookup_price(_book, _sku, _quantity), do: :erlang.nif_error(:nif_not_loaded)

  @doc """
  Prices a whole basket of `{sku, quantity}` pairs against `book` and
  returns the total together with one `{sku, quantity, unit_cents,
  line_cents}` tuple per line, or `{:error, {:unknown_sku, sku}}`.
  """
  @spec quote_basket(price_book(), [{String.t(), pos_integer()}]) ::
          {:ok, non_neg_integer(), [quote_line()]} | {:error, term()}
  def quote_basket(_book, _lines), do: :erlang.nif_error(:nif_not_loaded)
end
