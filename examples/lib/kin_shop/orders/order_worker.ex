defmodule KinShop.Orders.OrderWorker do
  @moduledoc """
  One process per open order, registered in `KinShop.OrderRegistry` under
  the order id. It serialises payment, shipment and cancellation of that
  order, so two concurrent requests cannot, say, capture a payment for an
  order that is being cancelled at the same moment.

  The order itself lives in the database. A worker that sees no message
  for fifteen minutes stops normally and is started again on demand.
  """
  use GenServer, restart: :transient

  require Logger

  alias KinShop.Orders
  alias KinShop.Payments.Gateway

  @idle_timeout :timer.minutes(15)

  @doc "Starts the worker for `order_id`, registered through the order registry."
  @spec start_link(pos_integer()) :: GenServer.on_start()
  def start_link(order_id) when is_integer(order_id) do
    GenServer.start_link(__MODULE__, order_id, name: via(order_id))
  end

  @doc """
  Authorises and captures payment for a pending order with the configured
  gateway and marks it as paid. Any other status yields
  `{:error, :invalid_state}` without contacting the gateway.
  """
  @spec pay(pos_integer(), map()) :: {:ok, Orders.Order.t()} | {:error, term()}
  def pay(order_id, payment_details) do
    with {:ok, pid} <- KinShop.WorkerSupervisor.ensure_order_worker(order_id) do
      GenServer.call(pid, {:pay, payment_details}, 30_000)
    end
  end

  @doc """
  Marks a paid order as shipped with `tracking_code`. The request is
  asynchronous; orders that are not paid yet are left untouched.
  """
  @spec ship(pos_integer(), String.t()) :: :ok
  def ship(order_id, tracking_code) when is_binary(tracking_code) do
    {:ok, pid} = KinShop.WorkerSupervisor.ensure_order_worker(order_id)
    GenServer.cast(pid, {:ship, tracking_code})
  end

  @doc "Returns the status of the order as currently held by its worker."
  @spec status(pos_integer()) :: Orders.Order.status()
  def status(order_id), do: GenServer.call(via(order_id), :status)

  defp via(order_id), do: {:via, Registry, {KinShop.OrderRegistry, order_id}}

  @impl true
  def init(order_id) do
    Logger.metadata(order_id: order_id)

    case Orders.get_order(order_id) do
      nil -> {:stop, :not_found}
      order -> {:ok, %{order: order, failed_payments: 0}, @idle_timeout}
    end
  end

  @impl true
  def handle_call({:pay, details}, _from, %{order: %{status: :pending} = order} = state) do
    result =
      with {:ok, auth} <- Gateway.authorize(order, details),
           {:ok, capture} <- Gateway.capture(auth) do
        Orders.update_order_status(order, :paid, %{payment_ref: capture.reference})
      end

    case result do
      {:ok, paid} ->
        KinShop.Metrics.Collector.increment("orders.paid")
        {:reply, {:ok, paid}, %{state | order: paid}, @idle_timeout}

      {:error, reason} = error ->
        Logger.warning("payment failed for order #{order.id}: #{inspect(reason)}")
        KinShop.Metrics.Collector.increment("orders.payment_failed")
        {:reply, error, %{state | failed_payments: state.failed_payments + 1}, @idle_timeout}
    end
  end

  def handle_call({:pay, _details}, _from, state) do
    {:reply, {:error, :invalid_state}, state, @idle_timeout}
  end

  def handle_call(:status, _from, state) do
    {:reply, state.order.status, state, @idle_timeout}
  end

  @impl true
  def handle_cast({:ship, tracking}, %{order: %{status: :paid} = order} = state) do
    case Orders.update_order_status(order, :shipped, %{tracking_code: tracking}) do
      {:ok, shipped} ->
        {:noreply, %{state | order: shipped}, @idle_timeout}

      {:error, changeset} ->
        Logger.error("could not ship order #{order.id}: #{inspect(changeset.errors)}")
        {:noreply, state, @idle_timeout}
    end
  end

  def handle_cast({:ship, _tracking}, %{order: order} = state) do
    Logger.warning("ignoring ship request for order #{order.id} in status #{order.status}")
    {:noreply, state, @idle_timeout}
  end

  @impl true
  def handle_info(:timeout, state) do
    {:stop, :normal, state}
  end
end
