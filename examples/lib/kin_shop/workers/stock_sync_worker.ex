defmodule KinShop.Workers.StockSyncWorker do
  @moduledoc """
  Pulls stock levels from the upstream warehouse API once a minute and
  writes them into the local inventory.

  While the warehouse is unreachable the worker backs off exponentially,
  with jitter, instead of calling it on every tick, and returns to the
  normal one-minute cadence after the first successful sync.
  """
  use GenServer

  require Logger

  alias KinShop.Inventory

  @sync_interval :timer.minutes(1)
  @initial_backoff 500
  @backoff_cap :timer.minutes(10)

  @doc "Starts the sync worker, registered under its module name."
  @spec start_link(keyword()) :: GenServer.on_start()
  def start_link(opts \\ []) do
    GenServer.start_link(__MODULE__, opts, name: __MODULE__)
  end

  @doc "Requests a sync right now, outside the regular schedule."
  @spec sync_now() :: :ok
  def sync_now do
    send(__MODULE__, :sync)
    :ok
  end

  @doc """
  Returns when the last successful sync finished (UTC) and how many syncs
  have failed in a row since then.
  """
  @spec status() :: %{last_synced_at: DateTime.t() | nil, failures: non_neg_integer()}
  def status, do: GenServer.call(__MODULE__, :status)

  @doc """
  Computes how long to wait after `failures` consecutive failed syncs:
  starts at 500 ms, doubles with each failure, never exceeds ten minutes,
  and adds random jitter of up to a fifth of the delay.
  """
  @spec backoff_delay(pos_integer()) :: pos_integer()
  def backoff_delay(failures) when is_integer(failures) and failures >= 1 do
    delay = min(@initial_backoff * Integer.pow(2, failures - 1), @backoff_cap)
    delay + :rand.uniform(max(div(delay, 5), 1))
  end

  @impl true
  def init(opts) do
    url = Keyword.get(opts, :url, Application.get_env(:kin_shop, :warehouse_url))
    Process.send_after(self(), :sync, Keyword.get(opts, :initial_delay, 1_000))
    {:ok, %{url: url, failures: 0, last_synced_at: nil, timer: nil}}
  end

  @impl true
  def handle_call(:status, _from, state) do
    {:reply, Map.take(state, [:last_synced_at, :failures]), state}
  end

  @impl true
  def handle_info(:sync, %{url: nil} = state) do
    {:noreply, state}
  end

  def handle_info(:sync, state) do
    if state.timer, do: Process.cancel_timer(state.timer)

    case fetch_levels(state.url) do
      {:ok, levels} ->
        updated = Inventory.apply_stock_levels(levels)
        Logger.debug("stock sync updated #{updated} products")
        timer = Process.send_after(self(), :sync, @sync_interval)
        {:noreply, %{state | failures: 0, last_synced_at: DateTime.utc_now(), timer: timer}}

      {:error, reason} ->
        failures = state.failures + 1
        delay = backoff_delay(failures)
        Logger.warning("stock sync failed (#{inspect(reason)}); attempt #{failures}, next in #{delay}ms")
        timer = Process.send_after(self(), :sync, delay)
        {:noreply, %{state | failures: failures, timer: timer}}
    end
  end

  defp fetch_levels(url) do
    case KinShop.HTTP.get_json(url) do
      {:ok, %{status: 200, body: %{"levels" => levels}}} when is_list(levels) ->
        {:ok, for(%{"sku" => sku, "on_hand" => qty} <- levels, is_integer(qty), do: {sku, qty})}

      {:ok, %{status: status}} ->
        {:error, {:http_status, status}}

      {:error, _reason} = error ->
        error
    end
  end
end
