import * as assert from "node:assert/strict";
import { describe, it } from "node:test";

import { formatStatus, retrainOutcome, statusView } from "../src/status";

const indexed = { root: "/repo", indexed: true, model: "all-MiniLM-L6-v2", chunks: 338, files: 42, queue: 0, stale: false };

describe("status bar", () => {
  it("shows the server state before any status", () => {
    assert.equal(statusView("starting").text, "$(sync~spin) codekin");
    assert.equal(statusView("running").text, "$(database) codekin");
    assert.equal(statusView("stopped").text, "$(circle-slash) codekin");
    assert.deepEqual(statusView("failed", undefined, "codekin: command not found"), {
      text: "$(error) codekin",
      tooltip: "codekin: codekin: command not found — see the codekin output channel",
      warning: true,
    });
  });

  it("shows the index size, the queue and staleness", () => {
    assert.deepEqual(statusView("running", indexed), {
      text: "$(database) codekin: 338 chunks",
      tooltip: "codekin: 338 chunks of /repo · all-MiniLM-L6-v2",
      warning: false,
    });
    assert.equal(statusView("running", { ...indexed, queue: 3 }).text, "$(sync~spin) codekin: 338 chunks, 3 queued");
    assert.equal(statusView("running", { ...indexed, stale: true }).text, "$(history) codekin: 338 chunks (stale)");
  });

  it("asks for an index when there is none", () => {
    assert.deepEqual(statusView("running", { root: "/repo", indexed: false, chunks: null }), {
      text: "$(warning) codekin: not indexed",
      tooltip: "codekin: no index yet — run `codekin index` in /repo",
      warning: true,
    });
  });
});

describe("status text", () => {
  it("lists the contract's fields first, then the rest", () => {
    assert.deepEqual(formatStatus({ extra: { a: 1 }, lastTraining: null, ...indexed }), [
      "root: /repo",
      "indexed: true",
      "model: all-MiniLM-L6-v2",
      "chunks: 338",
      "files: 42",
      "queue: 0",
      "stale: false",
      "lastTraining: -",
      'extra: {"a":1}',
    ]);
  });

  it("reads a retrain response", () => {
    assert.deepEqual(retrainOutcome({ started: false, message: "training is not available yet" }), {
      started: false,
      message: "training is not available yet",
    });
    assert.deepEqual(retrainOutcome({ started: true, message: "" }), { started: true, message: "the server gave no message" });
    assert.deepEqual(retrainOutcome(null), { started: false, message: "unexpected response null" });
  });
});
