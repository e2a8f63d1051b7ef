defmodule KinShop.Inventory.Cache do
  @moduledoc """
  Read-through cache of available stock per SKU, stored in a protected ETS
  table owned by this process.

  Reads go straight to ETS from the caller's process; only writes and the
  periodic expiry sweep pass through the GenServer, so a slow database
  never blocks a request that the cache can answer.
  """
  use GenServer

  require Logger

  @table :kin_inventory_cache
  @default_ttl :timer.minutes(5)
  @sweep_interval :timer.seconds(30)

  @doc "Starts the cache process. Accepts `:ttl`, the entry lifetime in milliseconds."
  @spec start_link(keyword()) :: GenServer.on_start()
  def start_link(opts) do
    GenServer.start_link(__MODULE__, opts, name: __MODULE__)
  end

  @doc """
  Returns the cached stock level for `sku`. When the entry is missing or
  expired, `loader` is called in the caller's process and a successful
  result is written back to the cache before it is returned.
  """
  @spec fetch(String.t(), (String.t() -> {:ok, non_neg_integer()} | {:error, term()})) ::
          {:ok, non_neg_integer()} | {:error, term()}
  def fetch(sku, loader) when is_binary(sku) and is_function(loader, 1) do
    now = System.monotonic_time(:millisecond)

    case :ets.lookup(@table, sku) do
      [{^sku, qty, expires_at}] when expires_at > now ->
        {:ok, qty}

      _missing_or_stale ->
        with {:ok, qty} <- loader.(sku) do
          :ok = put(sku, qty)
          {:ok, qty}
        end
    end
  end

  @doc "Stores the stock level of `sku`, replacing any cached value."
  @spec put(String.t(), non_neg_integer()) :: :ok
  def put(sku, qty) when is_binary(sku) and is_integer(qty) and qty >= 0 do
    GenServer.cast(__MODULE__, {:put, sku, qty})
  end

  @doc """
  Drops `sku` from the cache synchronously, so the very next `fetch/2`
  goes to the loader. Call it after every committed stock change.
  """
  @spec invalidate(String.t()) :: :ok
  def invalidate(sku), do: GenServer.call(__MODULE__, {:invalidate, sku})

  @doc "Returns the number of cached entries, including ones not yet swept."
  @spec size() :: non_neg_integer()
  def size, do: :ets.info(@table, :size)

  @impl true
  def init(opts) do
    table = :ets.new(@table, [:named_table, :set, :protected, read_concurrency: true])
    schedule_sweep()
    {:ok, %{table: table, ttl: Keyword.get(opts, :ttl, @default_ttl), evictions: 0}}
  end

  @impl true
  def handle_call({:invalidate, sku}, _from, state) do
    :ets.delete(state.table, sku)
    {:reply, :ok, state}
  end

  @impl true
  def handle_cast({:put, sku, qty}, state) do
    expires_at = System.monotonic_time(:millisecond) + state.ttl
    :ets.insert(state.table, {sku, qty, expires_at})
    {:noreply, state}
  end

  @impl true
  def handle_info(:sweep, state) do
    now = System.monotonic_time(:millisecond)
    expired = [{{:_, :_, :"$1"}, [{:"=<", :"$1", now}], [true]}]
    evicted = :ets.select_delete(state.table, expired)

    if evicted > 0, do: Logger.debug("inventory cache evicted #{evicted} expired entries")

    schedule_sweep()
    {:noreply, %{state | evictions: state.evictions + evicted}}
  end

  def handle_info(msg, state) do
    Logger.warning("#{inspect(__MODULE__)} ignoring unexpected message #{inspect(msg)}")
    {:noreply, state}
  end

  defp schedule_sweep, do: Process.send_after(self(), :sweep, @sweep_interval)
end
