defmodule KinShop.Parsers.SkuTest do
  use ExUnit.Case, async: true

  alias KinShop.Parsers.Sku

  doctest KinShop.Parsers.Sku

  describe "parse/1" do
    test "reads category, number and optional variant" do
      assert {:ok, %Sku{category: "MUG", number: 7, variant: nil}} = Sku.parse("KS-MUG-00007")
      assert {:ok, %Sku{variant: "BLK2"}} = Sku.parse("KS-MUG-00007-BLK2")
    end

    test "rejects wrong prefixes, short numbers and lower case" do
      for bad <- ["XX-MUG-00007", "KS-MUG-7", "ks-mug-00007", "KS-MU1-00007", "KS-MUG-00007-TOOLONG", ""] do
        assert Sku.parse(bad) == {:error, :invalid_sku}, "expected #{inspect(bad)} to be rejected"
      end
    end
  end

  test "normalize/1 cleans up hand-typed SKUs" do
    assert Sku.normalize("  ks_tee 00042 ") == "KS-TEE-00042"
    assert Sku.normalize("ks-tee-00042-xl") == "KS-TEE-00042-XL"
  end

  test "format/1 and to_string round-trip through parse/1" do
    for sku <- ["KS-TEE-00042", "KS-TEE-00042-XL", "KS-BAG-99999"] do
      {:ok, parsed} = Sku.parse(sku)
      assert Sku.format(parsed) == sku
      assert to_string(parsed) == sku
    end
  end

  test "valid?/1 is false for non-binaries" do
    refute Sku.valid?(nil)
    refute Sku.valid?(42)
    assert Sku.valid?("KS-TEE-00042")
  end
end
