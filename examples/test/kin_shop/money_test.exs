defmodule KinShop.MoneyTest do
  use ExUnit.Case, async: true

  alias KinShop.Money

  doctest KinShop.Money

  describe "format/1" do
    test "uses the currency symbol and two decimals" do
      assert Money.format(Money.new(1250, "EUR")) == "€12.50"
      assert Money.format(Money.new(5, "USD")) == "$0.05"
    end

    test "groups thousands with commas" do
      assert Money.format(Money.new(123_456_789, "GBP")) == "£1,234,567.89"
    end

    test "puts unknown currency codes after the amount" do
      assert Money.format(Money.new(99_900, "CHF")) == "999.00 CHF"
    end

    test "prefixes negative amounts with a minus sign" do
      assert Money.format(Money.new(-250, "EUR")) == "-€2.50"
    end
  end

  describe "parse/1" do
    test "accepts symbols, codes and bare numbers" do
      assert Money.parse("€12.5") == {:ok, Money.new(1250, "EUR")}
      assert Money.parse("12.50 usd") == {:ok, Money.new(1250, "USD")}
      assert Money.parse("7") == {:ok, Money.new(700, "EUR")}
    end

    test "ignores thousands separators" do
      assert Money.parse("1,299.00 GBP") == {:ok, Money.new(129_900, "GBP")}
    end

    test "rejects malformed input" do
      assert Money.parse("12.345 EUR") == {:error, :invalid_amount}
      assert Money.parse("twelve") == {:error, :invalid_amount}
      assert Money.parse("12 euros") == {:error, :invalid_currency}
    end
  end

  describe "apply_discount/2" do
    test "rounds the discount half up" do
      # 12.5% of 1.00 is 12.5 cents, rounded to 13
      assert Money.apply_discount(Money.new(100), 1_250).cents == 87
    end

    test "treats 0 and 10 000 basis points as no discount and free" do
      assert Money.apply_discount(Money.new(4_999), 0).cents == 4_999
      assert Money.apply_discount(Money.new(4_999), 10_000).cents == 0
    end

    test "rejects out-of-range discounts" do
      assert_raise FunctionClauseError, fn -> Money.apply_discount(Money.new(100), 10_001) end
    end
  end

  test "add/2 refuses to mix currencies" do
    assert_raise ArgumentError, ~r/cannot add EUR to USD/, fn ->
      Money.add(Money.new(1, "EUR"), Money.new(1, "USD"))
    end
  end

  test "sum/2 of an empty list is zero in the given currency" do
    assert Money.sum([], "GBP") == Money.new(0, "GBP")
    assert Money.sum([Money.new(150), Money.new(250)], "EUR") == Money.new(400)
  end
end
