defmodule KinShop.RateLimiter do
  @moduledoc """
  Token-bucket rate limiter keyed by an arbitrary term (API client id,
  remote IP, ...).

  Every key starts with `capacity` tokens, each request spends one or more
  tokens, and once a second every bucket is refilled by `refill_per_sec`
  tokens. Buckets that are full again are dropped on refill, so the state
  only holds keys that were active in the last few seconds.
  """
  use GenServer

  @type key :: term()

  @doc """
  Starts a limiter. Options are `:capacity` (default 60), `:refill_per_sec`
  (default 1) and `:name`, which defaults to the module name; pass
  `name: nil` for an anonymous limiter. `auto_refill: false` turns off the
  one-second refill timer so tests can drive refills by sending `:refill`.
  """
  @spec start_link(keyword()) :: GenServer.on_start()
  def start_link(opts) do
    {name, opts} = Keyword.pop(opts, :name, __MODULE__)
    GenServer.start_link(__MODULE__, opts, name: name)
  end

  @doc """
  Spends `cost` tokens from the bucket of `key`. Returns `:ok` when the
  request may go ahead, or `{:error, :rate_limited, retry_after_ms}` with
  the number of milliseconds until enough tokens will have been refilled.
  """
  @spec check(key(), pos_integer(), GenServer.server()) ::
          :ok | {:error, :rate_limited, non_neg_integer()}
  def check(key, cost \\ 1, server \\ __MODULE__) when is_integer(cost) and cost > 0 do
    GenServer.call(server, {:check, key, cost})
  end

  @doc "Returns the tokens left for `key`; an unknown key has full capacity."
  @spec remaining(key(), GenServer.server()) :: non_neg_integer()
  def remaining(key, server \\ __MODULE__), do: GenServer.call(server, {:remaining, key})

  @doc "Forgets the bucket of `key`, which restores it to full capacity."
  @spec reset(key(), GenServer.server()) :: :ok
  def reset(key, server \\ __MODULE__), do: GenServer.cast(server, {:reset, key})

  @impl true
  def init(opts) do
    capacity = Keyword.get(opts, :capacity, 60)
    refill = Keyword.get(opts, :refill_per_sec, 1)

    if Keyword.get(opts, :auto_refill, true) do
      {:ok, _tref} = :timer.send_interval(1_000, :refill)
    end

    {:ok, %{capacity: capacity, refill: refill, buckets: %{}}}
  end

  @impl true
  def handle_call({:check, key, cost}, _from, state) do
    tokens = Map.get(state.buckets, key, state.capacity)

    if tokens >= cost do
      {:reply, :ok, put_in(state.buckets[key], tokens - cost)}
    else
      missing = cost - tokens
      retry_after = div(missing * 1_000 + state.refill - 1, state.refill)
      {:reply, {:error, :rate_limited, retry_after}, state}
    end
  end

  def handle_call({:remaining, key}, _from, state) do
    {:reply, Map.get(state.buckets, key, state.capacity), state}
  end

  @impl true
  def handle_cast({:reset, key}, state) do
    {:noreply, %{state | buckets: Map.delete(state.buckets, key)}}
  end

  @impl true
  def handle_info(:refill, %{capacity: capacity, refill: refill} = state) do
    buckets =
      Enum.reduce(state.buckets, %{}, fn {key, tokens}, acc ->
        case min(tokens + refill, capacity) do
          full when full >= capacity -> acc
          partial -> Map.put(acc, key, partial)
        end
      end)

    {:noreply, %{state | buckets: buckets}}
  end
end
