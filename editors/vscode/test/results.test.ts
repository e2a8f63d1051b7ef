import * as assert from "node:assert/strict";
import { describe, it } from "node:test";

import {
  findSimilarArgument,
  kindIcon,
  parseSearchResponse,
  parseSimilarResponse,
  ResponseShapeError,
  similarTitle,
  toQuickPickItems,
  type CodekinResult,
  type Range,
} from "../src/results";

const twin: CodekinResult = {
  uri: "file:///repo/lib/kin_shop/workers/stock_sync_worker.ex",
  range: { start: { line: 39, character: 0 }, end: { line: 48, character: 5 } },
  path: "lib/kin_shop/workers/stock_sync_worker.ex",
  startLine: 40,
  endLine: 49,
  symbol: "KinShop.Workers.StockSyncWorker.backoff_delay/1",
  language: "elixir",
  kind: "function",
  score: 0.8641,
};

describe("responses", () => {
  it("parses a findSimilar response", () => {
    const query = { ...twin, symbol: "KinShop.Workers.WebhookRetryWorker.compute_backoff/1", score: 1 };
    assert.deepEqual(parseSimilarResponse({ query, results: [twin] }), { query, results: [twin] });
    assert.deepEqual(parseSimilarResponse({ query: null, results: [] }), { query: null, results: [] });
  });

  it("rejects responses without the contract's shape, saying what is wrong", () => {
    assert.throws(() => parseSearchResponse(null), ResponseShapeError);
    assert.throws(() => parseSearchResponse({ results: "none" }), /"results" is "none", not a list/);
    assert.throws(() => parseSearchResponse({ results: [{ ...twin, startLine: 0 }] }), /result.startLine is 0, not a line number >= 1/);
    assert.throws(() => parseSearchResponse({ results: [{ ...twin, range: { start: 1 } }] }), /result.range .* not an LSP range/);
    assert.throws(() => parseSimilarResponse({ query: { symbol: 3 }, results: [] }), /codekin.findSimilar: .*query: result.uri/);
  });
});

describe("quick pick items", () => {
  it("maps a result to a labelled, always shown item", () => {
    assert.deepEqual(toQuickPickItems([twin]), [
      {
        label: "$(symbol-function) KinShop.Workers.StockSyncWorker.backoff_delay/1",
        description: "0.86",
        detail: "lib/kin_shop/workers/stock_sync_worker.ex:40-49 · elixir",
        alwaysShow: true,
        result: twin,
      },
    ]);
  });

  it("names a chunk without a symbol by its place", () => {
    const [item] = toQuickPickItems([{ ...twin, symbol: "?", kind: "window" }]);
    assert.equal(item?.label, "$(file-code) lib/kin_shop/workers/stock_sync_worker.ex:40");
  });

  it("has an icon per kind", () => {
    assert.equal(kindIcon("module"), "symbol-module");
    assert.equal(kindIcon("class"), "symbol-class");
    assert.equal(kindIcon("something-else"), "file-code");
  });

  it("titles similar results by the query symbol", () => {
    assert.equal(similarTitle({ query: { ...twin, symbol: "A.f/1" }, results: [twin] }, "x.ex:3"), "1 similar to A.f/1");
    assert.equal(similarTitle({ query: null, results: [] }, "x.ex:3"), "0 similar to x.ex:3");
  });
});

describe("findSimilar argument", () => {
  const lines = ["defmodule A do", "  def f(x) do", "    x * 2", "  end", "end"];
  function editor(selection: Range, isDirty: boolean) {
    return {
      uri: "file:///repo/a.ex",
      selection,
      isDirty,
      getText(range: Range): string {
        return lines.slice(range.start.line, range.end.line).join("\n") + (range.end.line < lines.length ? "\n" : "");
      },
    };
  }

  it("sends an empty selection as the cursor, without text", () => {
    const cursor = { line: 2, character: 4 };
    assert.deepEqual(findSimilarArgument(editor({ start: cursor, end: cursor }, true)), {
      uri: "file:///repo/a.ex",
      range: { start: cursor, end: cursor },
    });
  });

  it("sends a selection as whole lines, with the unsaved text when dirty", () => {
    const selection = { start: { line: 1, character: 4 }, end: { line: 3, character: 2 } };
    const whole = { start: { line: 1, character: 0 }, end: { line: 4, character: 0 } };
    assert.deepEqual(findSimilarArgument(editor(selection, false)), { uri: "file:///repo/a.ex", range: whole });
    assert.deepEqual(findSimilarArgument(editor(selection, true)), {
      uri: "file:///repo/a.ex",
      range: whole,
      text: "  def f(x) do\n    x * 2\n  end\n",
    });
  });

  it("leaves out the line where a selection ends at column 0", () => {
    const selection = { start: { line: 1, character: 0 }, end: { line: 4, character: 0 } };
    assert.deepEqual(findSimilarArgument(editor(selection, false)).range, {
      start: { line: 1, character: 0 },
      end: { line: 4, character: 0 },
    });
  });
});
