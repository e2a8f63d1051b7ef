defmodule KinShop.Workers.WebhookRetryWorker do
  @moduledoc """
  Redelivers one webhook payload until the receiver acknowledges it with a
  2xx response or the attempt budget is used up.

  Attempts are spaced with capped exponential backoff plus random jitter,
  so many failing webhooks aimed at the same receiver do not all retry in
  lockstep once it comes back.
  """
  use GenServer, restart: :transient

  require Logger

  @base_delay 500
  @max_delay :timer.minutes(10)
  @max_attempts 12

  @doc """
  Starts a retry worker. `:url` and `:payload` are required;
  `:http_client` may replace `KinShop.HTTP` in tests.
  """
  @spec start_link(keyword()) :: GenServer.on_start()
  def start_link(opts), do: GenServer.start_link(__MODULE__, opts)

  @doc """
  Returns the delay in milliseconds before retry number `attempt`, counting
  from 1: the base delay of 500 ms doubled for every attempt, capped at ten
  minutes, plus up to 20% random jitter.
  """
  @spec compute_backoff(pos_integer()) :: pos_integer()
  def compute_backoff(attempt) when is_integer(attempt) and attempt > 0 do
    exponential = @base_delay * Integer.pow(2, attempt - 1)
    capped = min(exponential, @max_delay)
    jitter = :rand.uniform(max(div(capped, 5), 1))
    capped + jitter
  end

  @impl true
  def init(opts) do
    state = %{
      url: Keyword.fetch!(opts, :url),
      payload: Keyword.fetch!(opts, :payload),
      http: Keyword.get(opts, :http_client, KinShop.HTTP),
      attempt: 0
    }

    {:ok, state, {:continue, :deliver}}
  end

  @impl true
  def handle_continue(:deliver, state), do: deliver(state)

  @impl true
  def handle_info(:retry, state), do: deliver(state)

  defp deliver(%{attempt: attempt} = state) when attempt >= @max_attempts do
    Logger.error("webhook to #{state.url} dropped after #{attempt} attempts")
    KinShop.Metrics.Collector.increment("webhooks.dropped")
    {:stop, :normal, state}
  end

  defp deliver(state) do
    case state.http.post_json(state.url, state.payload) do
      {:ok, %{status: status}} when status in 200..299 ->
        KinShop.Metrics.Collector.increment("webhooks.delivered")
        {:stop, :normal, state}

      failure ->
        attempt = state.attempt + 1
        delay = compute_backoff(attempt)
        Logger.warning("webhook to #{state.url} failed (#{inspect(failure)}); retry #{attempt} in #{delay}ms")
        Process.send_after(self(), :retry, delay)
        {:noreply, %{state | attempt: attempt}}
    end
  end
end
