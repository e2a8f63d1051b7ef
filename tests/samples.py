"""Small Elixir sources shared by the index, CLI and language-server tests."""

CART = '''defmodule Shop.Cart do
  @moduledoc "A shopping cart."

  @doc "Adds an item with a quantity to the cart."
  def add_item(cart, sku, qty) when qty > 0 do
    Map.update(cart, sku, qty, &(&1 + qty))
  end

  @doc "Computes the total price of the cart using a price list."
  def total(cart, prices) do
    Enum.reduce(cart, 0, fn {sku, qty}, acc -> acc + Map.fetch!(prices, sku) * qty end)
  end
end
'''

RETRY = '''defmodule Shop.Retry do
  @doc "Retries a function with exponential backoff until it succeeds."
  def with_backoff(fun, attempt \\\\ 0) do
    case fun.() do
      {:ok, value} -> {:ok, value}
      {:error, _} when attempt < 5 ->
        Process.sleep(100 * Integer.pow(2, attempt))
        with_backoff(fun, attempt + 1)
      error -> error
    end
  end
end
'''

# A copy of Shop.Cart.total/2 with its local names renamed, in another module.
LEDGER = '''defmodule Shop.Ledger do
  @doc "Computes the total price of the cart using a price list."
  def total(basket, price_list) do
    Enum.reduce(basket, 0, fn {item, n}, sum -> sum + Map.fetch!(price_list, item) * n end)
  end
end
'''

# A thin wrapper (insert_in_leaf) and the sibling that says its words more often (insert).
TREE_INSERT = """insert(Key, {leaf, Keys}) when length(Keys) >= ?MAX ->
    %% a full leaf splits in two: the key goes to the leaf whose keys it sorts between
    {Low, High} = lists:split(length(Keys) div 2, Keys),
    {node, insert_in_leaf(Key, {leaf, Low}), {leaf, High}};
insert(Key, {leaf, _} = Leaf) ->
    insert_in_leaf(Key, Leaf)."""
TREE_INSERT_IN_LEAF = "insert_in_leaf(Key, {leaf, Keys}) -> {leaf, lists:merge([Key], Keys)}."

STOCK = '''-module(shop_stock).
-export([reserve/2, release/2]).

%% Reserve a quantity of an item in the stock table.
reserve(Item, Qty) ->
    case ets:lookup(stock, Item) of
        [{Item, Left}] when Left >= Qty -> ets:insert(stock, {Item, Left - Qty}), ok;
        _ -> {error, out_of_stock}
    end.

%% Give a reserved quantity back.
release(Item, Qty) ->
    ets:update_counter(stock, Item, Qty).
'''
