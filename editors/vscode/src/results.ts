/**
 * The contract's Result objects: checked parsing of server responses, the findSimilar
 * argument of an editor selection, and results as quick pick items. No `vscode` import.
 */

export interface Position {
  line: number;
  character: number;
}

export interface Range {
  start: Position;
  end: Position;
}

export interface CodekinResult {
  uri: string;
  range: Range;
  /** Repository-relative path. */
  path: string;
  /** 1-based, inclusive. */
  startLine: number;
  endLine: number;
  symbol: string;
  language: string;
  kind: string;
  score: number;
}

export interface SimilarResponse {
  query: CodekinResult | null;
  results: CodekinResult[];
}

/** A response that does not have the contract's shape (a server/extension version mismatch). */
export class ResponseShapeError extends Error {
  constructor(command: string, problem: string) {
    super(`${command}: unexpected response from the codekin server (${problem}); are the extension and codekin versions compatible?`);
    this.name = "ResponseShapeError";
  }
}

type Json = Record<string, unknown>;

function isObject(value: unknown): value is Json {
  return typeof value === "object" && value !== null && !Array.isArray(value);
}

function isPosition(value: unknown): value is Position {
  return isObject(value) && Number.isInteger(value.line) && Number.isInteger(value.character);
}

function isRange(value: unknown): value is Range {
  return isObject(value) && isPosition(value.start) && isPosition(value.end);
}

/** The problem with one result, or undefined when it is well-formed. */
function resultProblem(value: unknown): string | undefined {
  if (!isObject(value)) {
    return `a result is ${JSON.stringify(value)}, not an object`;
  }
  for (const key of ["uri", "path", "symbol", "language", "kind"]) {
    if (typeof value[key] !== "string") {
      return `result.${key} is ${JSON.stringify(value[key])}, not a string`;
    }
  }
  for (const key of ["startLine", "endLine"]) {
    if (!Number.isInteger(value[key]) || (value[key] as number) < 1) {
      return `result.${key} is ${JSON.stringify(value[key])}, not a line number >= 1`;
    }
  }
  if (typeof value.score !== "number") {
    return `result.score is ${JSON.stringify(value.score)}, not a number`;
  }
  if (!isRange(value.range)) {
    return `result.range is ${JSON.stringify(value.range)}, not an LSP range`;
  }
  return undefined;
}

function parseResultList(command: string, value: unknown): CodekinResult[] {
  if (!Array.isArray(value)) {
    throw new ResponseShapeError(command, `"results" is ${JSON.stringify(value)}, not a list`);
  }
  for (const item of value) {
    const problem = resultProblem(item);
    if (problem) {
      throw new ResponseShapeError(command, problem);
    }
  }
  return value as CodekinResult[];
}

/** The `results` of a codekin.search response. */
export function parseSearchResponse(value: unknown): CodekinResult[] {
  if (!isObject(value)) {
    throw new ResponseShapeError("codekin.search", `got ${JSON.stringify(value)}`);
  }
  return parseResultList("codekin.search", value.results);
}

/** A codekin.findSimilar response: the query chunk (or null for a free span) and the results. */
export function parseSimilarResponse(value: unknown): SimilarResponse {
  const command = "codekin.findSimilar";
  if (!isObject(value)) {
    throw new ResponseShapeError(command, `got ${JSON.stringify(value)}`);
  }
  let query: CodekinResult | null = null;
  if (value.query !== null && value.query !== undefined) {
    const problem = resultProblem(value.query);
    if (problem) {
      throw new ResponseShapeError(command, `query: ${problem}`);
    }
    query = value.query as CodekinResult;
  }
  return { query, results: parseResultList(command, value.results) };
}

/** What the Find Similar Code command needs of the active editor (plain data, no vscode). */
export interface EditorSnapshot {
  uri: string;
  /** The selection; empty means "the code around the cursor". */
  selection: Range;
  isDirty: boolean;
  /** The document text of a range. */
  getText(range: Range): string;
}

export interface FindSimilarArgument {
  uri: string;
  range: Range;
  text?: string;
}

/**
 * The codekin.findSimilar argument: an empty selection is sent as the cursor (the server takes
 * the indexed chunk around it); a selection as whole lines, with its unsaved text when the
 * document is dirty.
 */
export function findSimilarArgument(editor: EditorSnapshot): FindSimilarArgument {
  const { start, end } = editor.selection;
  if (start.line === end.line && start.character === end.character) {
    return { uri: editor.uri, range: { start: { ...start }, end: { ...end } } };
  }
  // whole lines: from the start of the first line to the start of the line after the last
  // (a selection ending at column 0 does not include that line)
  const lastLine = end.character === 0 && end.line > start.line ? end.line - 1 : end.line;
  const range: Range = { start: { line: start.line, character: 0 }, end: { line: lastLine + 1, character: 0 } };
  const argument: FindSimilarArgument = { uri: editor.uri, range };
  if (editor.isDirty) {
    argument.text = editor.getText(range);
  }
  return argument;
}

/** A quick pick entry for one result; `alwaysShow` keeps live results visible while typing. */
export interface ResultItem {
  label: string;
  description: string;
  detail: string;
  alwaysShow: boolean;
  result: CodekinResult;
}

const KIND_ICONS: Record<string, string> = {
  function: "symbol-function",
  method: "symbol-method",
  macro: "symbol-function",
  module: "symbol-module",
  class: "symbol-class",
  struct: "symbol-struct",
  namespace: "symbol-namespace",
  type: "symbol-interface",
};

export function kindIcon(kind: string): string {
  return KIND_ICONS[kind] ?? "file-code";
}

export function toQuickPickItem(result: CodekinResult): ResultItem {
  const name = result.symbol && result.symbol !== "?" ? result.symbol : `${result.path}:${result.startLine}`;
  return {
    label: `$(${kindIcon(result.kind)}) ${name}`,
    description: result.score.toFixed(2),
    detail: `${result.path}:${result.startLine}-${result.endLine} · ${result.language}`,
    alwaysShow: true,
    result,
  };
}

export function toQuickPickItems(results: readonly CodekinResult[]): ResultItem[] {
  return results.map(toQuickPickItem);
}

/** The title of a findSimilar result list. */
export function similarTitle(response: SimilarResponse, fallback: string): string {
  const symbol = response.query?.symbol;
  const what = symbol && symbol !== "?" ? symbol : fallback;
  const count = response.results.length;
  return `${count} similar to ${what}`;
}
