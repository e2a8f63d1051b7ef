/**
 * The status-bar text for the server state and the codekin.status response, and the status
 * as readable lines. No `vscode` import.
 */

export type ServerState = "starting" | "running" | "stopped" | "failed";

export interface StatusView {
  text: string;
  tooltip: string;
  /** Show with the warning background. */
  warning: boolean;
}

export type StatusResponse = Record<string, unknown>;

function count(value: unknown): number | undefined {
  return typeof value === "number" && Number.isFinite(value) ? value : undefined;
}

/** The status-bar item for a server state, the last status response and the last error. */
export function statusView(state: ServerState, status?: StatusResponse, error?: string): StatusView {
  switch (state) {
    case "starting":
      return { text: "$(sync~spin) codekin", tooltip: "codekin: starting the language server", warning: false };
    case "stopped":
      return { text: "$(circle-slash) codekin", tooltip: "codekin: server stopped — click for status", warning: false };
    case "failed":
      return {
        text: "$(error) codekin",
        tooltip: `codekin: ${error ?? "the language server failed"} — see the codekin output channel`,
        warning: true,
      };
    case "running":
      break;
  }
  if (!status) {
    return { text: "$(database) codekin", tooltip: "codekin: running — click for status", warning: false };
  }
  const root = typeof status.root === "string" ? status.root : "the workspace";
  if (status.indexed !== true) {
    return {
      text: "$(warning) codekin: not indexed",
      tooltip: `codekin: no index yet — run \`codekin index\` in ${root}`,
      warning: true,
    };
  }
  const chunks = count(status.chunks);
  const queue = count(status.queue);
  const model = typeof status.model === "string" ? status.model : "unknown model";
  const size = chunks === undefined ? "indexed" : `${chunks} chunks`;
  const tooltip = `codekin: ${size} of ${root} · ${model}`;
  if (queue !== undefined && queue > 0) {
    return { text: `$(sync~spin) codekin: ${size}, ${queue} queued`, tooltip: `${tooltip} · ${queue} files waiting`, warning: false };
  }
  if (status.stale === true) {
    return { text: `$(history) codekin: ${size} (stale)`, tooltip: `${tooltip} · files changed since indexing`, warning: false };
  }
  return { text: `$(database) codekin: ${size}`, tooltip, warning: false };
}

const STATUS_ORDER = ["root", "indexed", "model", "chunks", "files", "queue", "device", "stale", "lastTraining", "nextTraining", "dashboard"];

function show(value: unknown): string {
  if (value === null || value === undefined) {
    return "-";
  }
  if (typeof value === "string" || typeof value === "number" || typeof value === "boolean") {
    return String(value);
  }
  return JSON.stringify(value) ?? "-";
}

/** "key: value" lines, the contract's fields first, then the rest sorted. */
export function formatStatus(status: StatusResponse): string[] {
  const known = STATUS_ORDER.filter((key) => key in status);
  const rest = Object.keys(status)
    .filter((key) => !STATUS_ORDER.includes(key))
    .sort();
  return [...known, ...rest].map((key) => `${key}: ${show(status[key])}`);
}

/** What a codekin.retrain response says: whether training started, and the server's message. */
export function retrainOutcome(response: unknown): { started: boolean; message: string } {
  if (typeof response !== "object" || response === null) {
    return { started: false, message: `unexpected response ${JSON.stringify(response)}` };
  }
  const { started, message } = response as { started?: unknown; message?: unknown };
  return {
    started: started === true,
    message: typeof message === "string" && message !== "" ? message : "the server gave no message",
  };
}
