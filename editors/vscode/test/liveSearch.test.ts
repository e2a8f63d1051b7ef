import * as assert from "node:assert/strict";
import { describe, it } from "node:test";
import { setTimeout as sleep } from "node:timers/promises";

import { LiveSearch } from "../src/liveSearch";

function recorder(latency: (query: string) => number) {
  const events: string[] = [];
  const ran: string[] = [];
  const search = new LiveSearch<string>(20, {
    run: async (query) => {
      ran.push(query);
      await sleep(latency(query));
      if (query === "boom") {
        throw new Error("server error");
      }
      return `results for ${query}`;
    },
    deliver: (query, result) => events.push(`deliver ${query}: ${result}`),
    fail: (query, error) => events.push(`fail ${query}: ${(error as Error).message}`),
    busy: (busy) => events.push(`busy ${String(busy)}`),
  });
  return { search, events, ran };
}

describe("LiveSearch", () => {
  it("runs only the last query typed within the delay", async () => {
    const { search, events, ran } = recorder(() => 1);
    search.update("s");
    search.update("su");
    search.update("sup");
    await sleep(80);
    assert.deepEqual(ran, ["sup"]);
    assert.deepEqual(events, ["busy true", "busy true", "busy true", "busy false", "deliver sup: results for sup"]);
  });

  it("drops a slow older response when a newer query was typed", async () => {
    const { search, events, ran } = recorder((query) => (query === "old" ? 120 : 1));
    search.update("old");
    await sleep(40); // "old" is running now
    search.update("new");
    await sleep(200);
    assert.deepEqual(ran, ["old", "new"]);
    assert.deepEqual(events.filter((e) => !e.startsWith("busy")), ["deliver new: results for new"]);
  });

  it("reports the latest query's error and goes idle", async () => {
    const { search, events } = recorder(() => 1);
    search.update("boom");
    await sleep(80);
    assert.deepEqual(events, ["busy true", "busy false", "fail boom: server error"]);
  });

  it("cancels on an empty query and after dispose", async () => {
    const { search, events, ran } = recorder(() => 1);
    search.update("supervisor");
    search.update("   ");
    search.update("worker");
    search.dispose();
    search.update("after");
    await sleep(80);
    assert.deepEqual(ran, []);
    assert.deepEqual(events, ["busy true", "busy false", "busy true"]);
  });
});
