/**
 * The extension's settings (`codekin.*`) checked and turned into what the server needs:
 * its command line and the LSP initializationOptions of the contract. No `vscode` import,
 * so the node test runner covers it.
 */

export type SearchMode = "hybrid" | "dense" | "lexical";

export const SEARCH_MODES: readonly SearchMode[] = ["hybrid", "dense", "lexical"];

export interface Settings {
  /** Command line of the language server, e.g. ["codekin", "serve"]. */
  serverCommand: string[];
  /** Embedding model passed as `--model`; "" keeps the repository's configuration. */
  model: string;
  /** Results scoring below this are dropped (search and find similar). */
  minSimilarity: number;
  searchLimit: number;
  searchMode: SearchMode;
  codeLensEnabled: boolean;
  codeLensMinSimilarity: number;
}

export const DEFAULT_SETTINGS: Readonly<Settings> = Object.freeze({
  serverCommand: ["codekin", "serve"],
  model: "",
  minSimilarity: 0,
  searchLimit: 10,
  searchMode: "hybrid",
  codeLensEnabled: true,
  codeLensMinSimilarity: 0.7, // the server's default (LENS_MIN_SIMILARITY in server/codekin/lsp/options.py)
});

/** The contract's initializationOptions (camelCase, all fields present). */
export interface InitializationOptions {
  codeLens: { enabled: boolean; minSimilarity: number };
  search: { limit: number; minSimilarity: number; mode: SearchMode };
}

export interface SettingsResult {
  settings: Settings;
  /** One sentence per rejected value; the default was used for it. */
  problems: string[];
}

type Getter = (key: string) => unknown;

function isUnit(value: unknown): value is number {
  return typeof value === "number" && Number.isFinite(value) && value >= 0 && value <= 1;
}

/**
 * Read every setting through `get` (e.g. `key => workspace.getConfiguration().get(key)`).
 * A missing value takes its default; a bad one is reported in `problems` and takes its default.
 */
export function readSettings(get: Getter): SettingsResult {
  const problems: string[] = [];
  function pick<T>(key: string, fallback: T, valid: (value: unknown) => value is T, expected: string): T {
    const value = get(key);
    if (value === undefined || value === null) {
      return fallback;
    }
    if (!valid(value)) {
      problems.push(`codekin.${key} must be ${expected}, got ${JSON.stringify(value)}; using ${JSON.stringify(fallback)}`);
      return fallback;
    }
    return value;
  }
  const d = DEFAULT_SETTINGS;
  const settings: Settings = {
    serverCommand: pick(
      "server.command",
      [...d.serverCommand],
      (v): v is string[] => Array.isArray(v) && v.length > 0 && v.every((s) => typeof s === "string" && s.trim() !== ""),
      'a non-empty list of strings, e.g. ["codekin", "serve"]',
    ),
    model: pick("model", d.model, (v): v is string => typeof v === "string", "a string"),
    minSimilarity: pick("minSimilarity", d.minSimilarity, isUnit, "a number from 0 to 1"),
    searchLimit: pick(
      "search.limit",
      d.searchLimit,
      (v): v is number => Number.isInteger(v) && (v as number) >= 1 && (v as number) <= 200,
      "an integer from 1 to 200",
    ),
    searchMode: pick(
      "search.mode",
      d.searchMode,
      (v): v is SearchMode => SEARCH_MODES.includes(v as SearchMode),
      `one of ${SEARCH_MODES.join(", ")}`,
    ),
    codeLensEnabled: pick("codeLens.enabled", d.codeLensEnabled, (v): v is boolean => typeof v === "boolean", "true or false"),
    codeLensMinSimilarity: pick("codeLens.minSimilarity", d.codeLensMinSimilarity, isUnit, "a number from 0 to 1"),
  };
  return { settings, problems };
}

export function toInitializationOptions(settings: Settings): InitializationOptions {
  return {
    codeLens: { enabled: settings.codeLensEnabled, minSimilarity: settings.codeLensMinSimilarity },
    search: { limit: settings.searchLimit, minSimilarity: settings.minSimilarity, mode: settings.searchMode },
  };
}

/** The executable and arguments that start the server (`--model` appended when set). */
export function serverExecutable(settings: Settings): { command: string; args: string[] } {
  const [command = "codekin", ...args] = settings.serverCommand;
  const model = settings.model.trim();
  return { command, args: model ? [...args, "--model", model] : args };
}
