defmodule KinShop.WorkerSupervisor do
  @moduledoc """
  Dynamic supervisor for short-lived, per-entity processes: one
  `KinShop.Orders.OrderWorker` per open order and one
  `KinShop.Workers.WebhookRetryWorker` per failed webhook delivery.

  Both worker modules declare `restart: :transient`, so a worker that stops
  normally is gone for good while one that crashes is restarted.
  """
  use DynamicSupervisor

  alias KinShop.Orders.OrderWorker
  alias KinShop.Workers.WebhookRetryWorker

  @doc "Starts the dynamic worker supervisor, registered under its module name."
  @spec start_link(keyword()) :: Supervisor.on_start()
  def start_link(opts \\ []) do
    DynamicSupervisor.start_link(__MODULE__, opts, name: __MODULE__)
  end

  @impl true
  def init(opts) do
    DynamicSupervisor.init(
      strategy: :one_for_one,
      max_children: Keyword.get(opts, :max_children, 10_000)
    )
  end

  @doc """
  Starts the worker that owns the lifecycle of `order_id`, or returns the
  one that is already running. Both cases answer `{:ok, pid}` so that two
  concurrent requests for the same order never race each other.
  """
  @spec ensure_order_worker(pos_integer()) :: {:ok, pid()} | {:error, term()}
  def ensure_order_worker(order_id) do
    case DynamicSupervisor.start_child(__MODULE__, {OrderWorker, order_id}) do
      {:ok, pid} -> {:ok, pid}
      {:error, {:already_started, pid}} -> {:ok, pid}
      {:error, reason} -> {:error, reason}
    end
  end

  @doc """
  Hands a webhook `payload` that could not be delivered to `url` over to a
  fresh retry worker, which keeps redelivering it with backoff.
  """
  @spec start_webhook_retry(String.t(), map()) :: DynamicSupervisor.on_start_child()
  def start_webhook_retry(url, payload) when is_binary(url) and is_map(payload) do
    DynamicSupervisor.start_child(__MODULE__, {WebhookRetryWorker, url: url, payload: payload})
  end

  @doc """
  Returns how many workers of each module are currently alive, e.g.
  `%{KinShop.Orders.OrderWorker => 12}`.
  """
  @spec counts() :: %{optional(module()) => non_neg_integer()}
  def counts do
    __MODULE__
    |> DynamicSupervisor.which_children()
    |> Enum.reduce(%{}, fn {_id, _pid, _type, [module]}, acc ->
      Map.update(acc, module, 1, &(&1 + 1))
    end)
  end
end
