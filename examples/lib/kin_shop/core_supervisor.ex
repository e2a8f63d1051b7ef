defmodule KinShop.CoreSupervisor do
  @moduledoc """
  Supervises the long-lived singleton processes that the rest of the system
  depends on: metrics, the Erlang event log and payment circuit breaker,
  the inventory cache, the rate limiter and the warehouse sync worker.

  The strategy is `:rest_for_one`. The metrics collector is started first
  and every later child reports into it, so when the collector crashes the
  children after it are restarted as well and re-register their handlers.
  """
  use Supervisor

  @doc "Starts the core supervisor, registered under its module name."
  @spec start_link(keyword()) :: Supervisor.on_start()
  def start_link(opts \\ []) do
    Supervisor.start_link(__MODULE__, opts, name: __MODULE__)
  end

  @impl true
  def init(_opts) do
    breaker_opts = Application.get_env(:kin_shop, :payment_breaker, [])

    children = [
      KinShop.Metrics.Collector,
      %{
        id: :kin_event_log,
        start: {:kin_event_log, :start_link, [1_000]}
      },
      %{
        id: :payment_breaker,
        start: {:kin_circuit_breaker, :start_link, [:payment_breaker, breaker_opts]}
      },
      {KinShop.Inventory.Cache, ttl: :timer.minutes(5)},
      {KinShop.RateLimiter, capacity: 60, refill_per_sec: 1},
      KinShop.Workers.StockSyncWorker
    ]

    Supervisor.init(children, strategy: :rest_for_one, max_restarts: 10, max_seconds: 60)
  end

  @doc """
  Returns the pid of the core child registered with `id`, or `nil` when it
  is not running (for instance while it is being restarted). Handy from a
  remote shell when diagnosing a stuck process.
  """
  @spec child_pid(term()) :: pid() | nil
  def child_pid(id) do
    __MODULE__
    |> Supervisor.which_children()
    |> Enum.find_value(fn
      {^id, pid, _type, _modules} when is_pid(pid) -> pid
      _other -> nil
    end)
  end
end
