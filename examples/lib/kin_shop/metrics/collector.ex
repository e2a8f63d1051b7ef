defmodule KinShop.Metrics.Collector do
  @moduledoc """
  In-process metrics aggregator with counters and simple histograms
  (count, sum, min, max) keyed by metric name.

  Every ten seconds the current window is logged as one summary line and
  reset. The collector also attaches to the repo query and HTTP request
  telemetry events, so database and request latency are recorded without
  any instrumentation at the call sites.
  """
  use GenServer

  require Logger

  @flush_interval :timer.seconds(10)
  @handler_id "kin-shop-metrics"
  @telemetry_events [
    [:kin_shop, :repo, :query],
    [:kin_shop, :http, :request, :stop]
  ]

  @doc "Starts the collector, registered under its module name."
  @spec start_link(keyword()) :: GenServer.on_start()
  def start_link(opts \\ []) do
    GenServer.start_link(__MODULE__, opts, name: __MODULE__)
  end

  @doc "Adds `by` to the counter `name`. This is a cast and never blocks the caller."
  @spec increment(String.t(), integer()) :: :ok
  def increment(name, by \\ 1) when is_binary(name) and is_integer(by) do
    GenServer.cast(__MODULE__, {:increment, name, by})
  end

  @doc """
  Records one observation of `value` (typically a duration in
  microseconds) in the histogram `name`.
  """
  @spec observe(String.t(), number()) :: :ok
  def observe(name, value) when is_binary(name) and is_number(value) do
    GenServer.cast(__MODULE__, {:observe, name, value})
  end

  @doc "Returns the counters and histograms of the current, unflushed window."
  @spec snapshot() :: %{counters: map(), histograms: map()}
  def snapshot, do: GenServer.call(__MODULE__, :snapshot)

  @doc """
  Reports and resets the current window right away. Returns `:ok` even if
  the collector is not running, because it is called during shutdown.
  """
  @spec flush() :: :ok
  def flush do
    GenServer.call(__MODULE__, :flush)
  catch
    :exit, _reason -> :ok
  end

  @doc """
  Telemetry handler that turns repo query and HTTP request events into
  histogram observations. Attached by `init/1`; not meant to be called
  directly.
  """
  @spec handle_event([atom()], map(), map(), term()) :: :ok
  def handle_event([:kin_shop, :repo, :query], measurements, metadata, _config) do
    micros = System.convert_time_unit(measurements.total_time, :native, :microsecond)
    observe("repo.query.#{metadata.source || "raw"}", micros)
  end

  def handle_event([:kin_shop, :http, :request, :stop], measurements, metadata, _config) do
    micros = System.convert_time_unit(measurements.duration, :native, :microsecond)
    observe("http.#{metadata.method}.#{div(metadata.status, 100)}xx", micros)
  end

  @impl true
  def init(_opts) do
    Process.flag(:trap_exit, true)
    :ok = :telemetry.attach_many(@handler_id, @telemetry_events, &__MODULE__.handle_event/4, nil)
    schedule_flush()
    {:ok, empty_window()}
  end

  @impl true
  def handle_cast({:increment, name, by}, state) do
    {:noreply, update_in(state.counters, &Map.update(&1, name, by, fn n -> n + by end))}
  end

  def handle_cast({:observe, name, value}, state) do
    histograms = Map.update(state.histograms, name, new_histogram(value), &record(&1, value))
    {:noreply, %{state | histograms: histograms}}
  end

  @impl true
  def handle_call(:snapshot, _from, state) do
    {:reply, Map.take(state, [:counters, :histograms]), state}
  end

  def handle_call(:flush, _from, state) do
    report(state)
    {:reply, :ok, empty_window()}
  end

  @impl true
  def handle_info(:flush, state) do
    report(state)
    schedule_flush()
    {:noreply, empty_window()}
  end

  @impl true
  def terminate(_reason, _state) do
    :telemetry.detach(@handler_id)
  end

  defp empty_window, do: %{counters: %{}, histograms: %{}, started_at: System.monotonic_time(:millisecond)}

  defp new_histogram(value), do: %{count: 1, sum: value, min: value, max: value}

  defp record(%{count: count, sum: sum, min: lo, max: hi}, value) do
    %{count: count + 1, sum: sum + value, min: min(lo, value), max: max(hi, value)}
  end

  defp report(%{counters: counters, histograms: histograms}) when counters == %{} and histograms == %{} do
    :ok
  end

  defp report(%{counters: counters, histograms: histograms, started_at: started_at}) do
    window_ms = System.monotonic_time(:millisecond) - started_at

    summary =
      Enum.map(histograms, fn {name, %{count: n, sum: sum, max: max}} ->
        "#{name}: n=#{n} avg=#{Float.round(sum / n, 1)} max=#{max}"
      end)

    Logger.info("metrics over #{window_ms}ms counters=#{inspect(counters)} #{Enum.join(summary, "; ")}")
  end

  defp schedule_flush, do: Process.send_after(self(), :flush, @flush_interval)
end
