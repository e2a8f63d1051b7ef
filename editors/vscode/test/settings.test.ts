import * as assert from "node:assert/strict";
import { describe, it } from "node:test";

import { DEFAULT_SETTINGS, readSettings, serverExecutable, toInitializationOptions } from "../src/settings";

function from(values: Record<string, unknown>) {
  return readSettings((key) => values[key]);
}

describe("readSettings", () => {
  it("uses the defaults when nothing is set", () => {
    assert.deepEqual(from({}), { settings: { ...DEFAULT_SETTINGS, serverCommand: ["codekin", "serve"] }, problems: [] });
  });

  it("keeps false and 0 (no truthiness fallbacks)", () => {
    const { settings, problems } = from({ "codeLens.enabled": false, minSimilarity: 0, "codeLens.minSimilarity": 0 });
    assert.equal(settings.codeLensEnabled, false);
    assert.equal(settings.minSimilarity, 0);
    assert.equal(settings.codeLensMinSimilarity, 0);
    assert.deepEqual(problems, []);
  });

  it("reports each bad value and uses its default", () => {
    const { settings, problems } = from({
      "server.command": [],
      minSimilarity: 1.5,
      "search.limit": 2.5,
      "search.mode": "fuzzy",
      "codeLens.enabled": "yes",
    });
    assert.deepEqual(settings, { ...DEFAULT_SETTINGS, serverCommand: ["codekin", "serve"] });
    assert.deepEqual(problems, [
      'codekin.server.command must be a non-empty list of strings, e.g. ["codekin", "serve"], got []; using ["codekin","serve"]',
      "codekin.minSimilarity must be a number from 0 to 1, got 1.5; using 0",
      "codekin.search.limit must be an integer from 1 to 200, got 2.5; using 10",
      'codekin.search.mode must be one of hybrid, dense, lexical, got "fuzzy"; using "hybrid"',
      'codekin.codeLens.enabled must be true or false, got "yes"; using true',
    ]);
  });

  it("does not share the default command array", () => {
    const { settings } = from({});
    settings.serverCommand.push("--verbose");
    assert.deepEqual(DEFAULT_SETTINGS.serverCommand, ["codekin", "serve"]);
  });
});

describe("settings -> server", () => {
  it("maps to the contract's initializationOptions", () => {
    const { settings } = from({ minSimilarity: 0.4, "search.limit": 25, "search.mode": "dense", "codeLens.minSimilarity": 0.9 });
    assert.deepEqual(toInitializationOptions(settings), {
      codeLens: { enabled: true, minSimilarity: 0.9 },
      search: { limit: 25, minSimilarity: 0.4, mode: "dense" },
    });
  });

  it("splits the command line and adds --model when a model is set", () => {
    assert.deepEqual(serverExecutable(from({}).settings), { command: "codekin", args: ["serve"] });
    const custom = from({ "server.command": ["/venv/bin/codekin", "serve"], model: " /models/kin-v3 " }).settings;
    assert.deepEqual(serverExecutable(custom), { command: "/venv/bin/codekin", args: ["serve", "--model", "/models/kin-v3"] });
  });
});
