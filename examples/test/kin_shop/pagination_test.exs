defmodule KinShop.PaginationTest do
  use ExUnit.Case, async: true

  alias KinShop.Pagination

  doctest KinShop.Pagination

  describe "params/1" do
    test "defaults to the first page of 20" do
      assert Pagination.params(%{}) == %{page: 1, page_size: 20}
    end

    test "parses string values and caps the page size" do
      assert Pagination.params(%{"page" => "3", "page_size" => "500"}) == %{page: 3, page_size: 100}
    end

    test "falls back to defaults for garbage and non-positive values" do
      assert Pagination.params(%{"page" => "-2", "page_size" => "ten"}) == %{page: 1, page_size: 20}
      assert Pagination.params(%{"page" => "2abc"}) == %{page: 1, page_size: 20}
    end
  end

  describe "total_pages/2" do
    test "rounds up partial pages" do
      assert Pagination.total_pages(0, 20) == 0
      assert Pagination.total_pages(20, 20) == 1
      assert Pagination.total_pages(21, 20) == 2
    end
  end

  describe "page_range/3" do
    test "shows every page when there are only a few" do
      assert Pagination.page_range(2, 4) == [1, 2, 3, 4]
    end

    test "inserts gaps on both sides of the window" do
      assert Pagination.page_range(10, 30, 1) == [1, :gap, 9, 10, 11, :gap, 30]
    end

    test "handles the edges" do
      assert Pagination.page_range(1, 10) == [1, 2, 3, :gap, 10]
      assert Pagination.page_range(10, 10) == [1, :gap, 8, 9, 10]
      assert Pagination.page_range(1, 1) == [1]
      assert Pagination.page_range(1, 0) == []
    end
  end

  test "meta/1 reports whether there is a next page" do
    page = %Pagination{page: 2, page_size: 10, total_entries: 25, total_pages: 3}
    assert %{has_next: true, total_entries: 25} = Pagination.meta(page)
    assert %{has_next: false} = Pagination.meta(%{page | page: 3})
  end
end
