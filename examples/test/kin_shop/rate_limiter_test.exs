defmodule KinShop.RateLimiterTest do
  use ExUnit.Case, async: true

  alias KinShop.RateLimiter

  setup do
    limiter = start_supervised!({RateLimiter, name: nil, capacity: 3, refill_per_sec: 2, auto_refill: false})
    %{limiter: limiter}
  end

  test "allows requests until the bucket is empty", %{limiter: limiter} do
    assert :ok = RateLimiter.check("client-a", 1, limiter)
    assert :ok = RateLimiter.check("client-a", 2, limiter)
    assert {:error, :rate_limited, retry_after} = RateLimiter.check("client-a", 1, limiter)
    assert retry_after == 500
  end

  test "keeps separate buckets per key", %{limiter: limiter} do
    assert :ok = RateLimiter.check("client-a", 3, limiter)
    assert :ok = RateLimiter.check("client-b", 3, limiter)
    assert RateLimiter.remaining("client-a", limiter) == 0
    assert RateLimiter.remaining("client-c", limiter) == 3
  end

  test "reports how long to wait for an expensive request", %{limiter: limiter} do
    assert :ok = RateLimiter.check("client-a", 3, limiter)
    assert {:error, :rate_limited, 1_500} = RateLimiter.check("client-a", 3, limiter)
  end

  test "refills buckets on the refill tick", %{limiter: limiter} do
    :ok = RateLimiter.check("client-a", 3, limiter)
    send(limiter, :refill)
    assert RateLimiter.remaining("client-a", limiter) == 2
    send(limiter, :refill)
    assert RateLimiter.remaining("client-a", limiter) == 3
  end

  test "reset/2 restores full capacity", %{limiter: limiter} do
    :ok = RateLimiter.check("client-a", 3, limiter)
    :ok = RateLimiter.reset("client-a", limiter)
    assert RateLimiter.remaining("client-a", limiter) == 3
  end
end
