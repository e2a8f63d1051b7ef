defmodule KinShop.Application do
  @moduledoc """
  OTP application callback module.

  The top-level tree is `:one_for_one` and starts, in order: the repo, the
  order registry, a task supervisor, the core supervisor (long-lived
  singletons), the worker supervisor (dynamic, per-order processes) and
  finally the HTTP listener. The listener comes last so that no request is
  accepted before everything it depends on is running.
  """
  use Application

  require Logger

  @doc """
  Starts the KinShop supervision tree. The HTTP port is read from the
  `:http_port` application environment key; setting it to `nil` (as the
  test configuration does) skips the listener entirely.
  """
  @impl true
  def start(_type, _args) do
    port = Application.get_env(:kin_shop, :http_port, 4080)

    children =
      [
        KinShop.Repo,
        {Registry, keys: :unique, name: KinShop.OrderRegistry},
        {Task.Supervisor, name: KinShop.TaskSupervisor},
        KinShop.CoreSupervisor,
        KinShop.WorkerSupervisor
      ] ++ http_children(port)

    opts = [strategy: :one_for_one, name: KinShop.Supervisor, max_restarts: 5, max_seconds: 10]

    Logger.info("kin_shop #{KinShop.version()} starting (http port: #{inspect(port)})")
    Supervisor.start_link(children, opts)
  end

  @doc """
  Flushes the current metrics window while the collector is still alive,
  so that the last reporting interval is not lost on a graceful shutdown.
  """
  @impl true
  def prep_stop(state) do
    KinShop.Metrics.Collector.flush()
    state
  end

  defp http_children(nil), do: []

  defp http_children(port) when is_integer(port) do
    [{Plug.Cowboy, scheme: :http, plug: KinShop.Web.Router, options: [port: port]}]
  end
end
