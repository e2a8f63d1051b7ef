/** The commands: Find Similar Code, Semantic Search, Index Repository, Retrain, Show Status, Restart Server. */
import * as vscode from "vscode";

import { LiveSearch } from "./liveSearch";
import {
  findSimilarArgument,
  parseSearchResponse,
  parseSimilarResponse,
  similarTitle,
  toQuickPickItems,
  type CodekinResult,
  type Range,
  type ResultItem,
} from "./results";
import type { CodekinServer } from "./server";
import { formatStatus, retrainOutcome, type StatusResponse } from "./status";
import type { StatusBar } from "./statusBar";

const SEARCH_DELAY_MS = 250;

function toRange(range: Range): vscode.Range {
  return new vscode.Range(range.start.line, range.start.character, range.end.line, range.end.character);
}

async function openResult(result: CodekinResult, preview: boolean): Promise<void> {
  const document = await vscode.workspace.openTextDocument(vscode.Uri.parse(result.uri));
  const range = toRange(result.range);
  await vscode.window.showTextDocument(document, { selection: range, preview, preserveFocus: preview });
}

function message(error: unknown): string {
  return error instanceof Error ? error.message : String(error);
}

export class Commands {
  constructor(
    private readonly server: CodekinServer,
    private readonly statusBar: StatusBar,
    private readonly log: vscode.LogOutputChannel,
  ) {}

  register(context: vscode.ExtensionContext): void {
    const add = (id: string, run: () => Promise<void>): void => {
      context.subscriptions.push(
        vscode.commands.registerCommand(id, async () => {
          try {
            await run();
          } catch (error) {
            this.log.error(`${id}: ${message(error)}`);
            void vscode.window.showErrorMessage(`codekin: ${message(error)}`);
          }
        }),
      );
    };
    add("codekin.findSimilarCode", () => this.findSimilar());
    add("codekin.semanticSearch", () => this.semanticSearch());
    add("codekin.indexRepository", () => this.index());
    add("codekin.retrainModel", () => this.retrain());
    add("codekin.showStatus", () => this.showStatus());
    add("codekin.restartServer", () => this.server.restart("requested"));
  }

  /** Results in a quick pick; moving through it previews, accepting opens. */
  async showResults(title: string, results: readonly CodekinResult[]): Promise<void> {
    if (results.length === 0) {
      void vscode.window.showInformationMessage(
        `codekin: ${title}. Lower "codekin.minSimilarity", or run \`codekin index\` if files changed.`,
      );
      return;
    }
    const picked = await vscode.window.showQuickPick<ResultItem>(toQuickPickItems(results), {
      title: `codekin: ${title}`,
      matchOnDescription: true,
      matchOnDetail: true,
      onDidSelectItem: (item) => {
        void openResult((item as ResultItem).result, true);
      },
    });
    if (picked) {
      await openResult(picked.result, false);
    }
  }

  /** A code lens ran codekin.findSimilar: show what it found. */
  async showLensResult(response: unknown): Promise<void> {
    const similar = parseSimilarResponse(response);
    await this.showResults(similarTitle(similar, "this code"), similar.results);
  }

  private async findSimilar(): Promise<void> {
    const editor = vscode.window.activeTextEditor;
    if (!editor || editor.document.uri.scheme !== "file") {
      void vscode.window.showInformationMessage("codekin: open a file of the repository and put the cursor in a function.");
      return;
    }
    const document = editor.document;
    const argument = findSimilarArgument({
      uri: document.uri.toString(),
      selection: {
        start: { line: editor.selection.start.line, character: editor.selection.start.character },
        end: { line: editor.selection.end.line, character: editor.selection.end.character },
      },
      isDirty: document.isDirty,
      getText: (range) => document.getText(toRange(range)),
    });
    const response = await vscode.window.withProgress(
      { location: vscode.ProgressLocation.Window, title: "codekin: finding similar code" },
      (_progress, token) => this.server.execute("codekin.findSimilar", argument, token),
    );
    const similar = parseSimilarResponse(response);
    const line = editor.selection.active.line + 1;
    await this.showResults(similarTitle(similar, `${vscode.workspace.asRelativePath(document.uri)}:${line}`), similar.results);
  }

  private async semanticSearch(): Promise<void> {
    const pick = vscode.window.createQuickPick<ResultItem>();
    const title = "codekin: semantic search";
    pick.title = title;
    pick.placeholder = "Describe the code, e.g. supervisor that restarts workers with backoff";
    pick.matchOnDescription = true;
    pick.matchOnDetail = true;
    const live = new LiveSearch<CodekinResult[]>(SEARCH_DELAY_MS, {
      run: async (query) => parseSearchResponse(await this.server.execute("codekin.search", { query })),
      deliver: (query, results) => {
        pick.items = toQuickPickItems(results);
        pick.title = results.length === 0 ? `${title}: no results for "${query}"` : `${title}: ${results.length} results`;
      },
      fail: (query, error) => {
        pick.items = [];
        pick.title = `${title}: "${query}" failed`;
        this.log.error(`codekin.search "${query}" failed: ${message(error)}`);
        void vscode.window.showErrorMessage(`codekin: search failed: ${message(error)}`);
      },
      busy: (busy) => {
        pick.busy = busy;
      },
    });
    const listeners: vscode.Disposable[] = [
      pick.onDidChangeValue((value) => {
        if (value.trim() === "") {
          pick.items = [];
          pick.title = title;
        }
        live.update(value);
      }),
      pick.onDidAccept(() => {
        const chosen = pick.selectedItems[0];
        if (chosen) {
          pick.hide();
          void openResult(chosen.result, false);
        }
      }),
    ];
    pick.onDidHide(() => {
      live.dispose();
      for (const listener of listeners) {
        listener.dispose();
      }
      pick.dispose();
    });
    pick.show();
    return Promise.resolve();
  }

  /** `codekin index` of the folder on the server (progress in the window; the server also offers it). */
  private async index(): Promise<void> {
    const response = await this.server.execute("codekin.index", {});
    const text = (response as { message?: unknown } | undefined)?.message;
    void vscode.window.showInformationMessage(`codekin: ${typeof text === "string" ? text : "indexed"}`);
    await this.refreshStatus();
  }

  private async retrain(): Promise<void> {
    const response = await this.server.execute("codekin.retrain", {});
    const { started, message: text } = retrainOutcome(response);
    this.log.info(`retrain: started=${String(started)} ${text}`);
    if (started) {
      void vscode.window.showInformationMessage(`codekin: retraining started. ${text}`);
    } else {
      void vscode.window.showWarningMessage(`codekin: retraining did not start: ${text}`);
    }
  }

  /** Ask the server for its status and update the status bar; quietly unless `show`. */
  async refreshStatus(show = false): Promise<StatusResponse | undefined> {
    if (!this.server.running) {
      return undefined;
    }
    const response = await this.server.execute("codekin.status", {});
    if (typeof response !== "object" || response === null || Array.isArray(response)) {
      throw new Error(`codekin.status: unexpected response ${JSON.stringify(response)}`);
    }
    const status = response as StatusResponse;
    this.statusBar.setStatus(status);
    if (show) {
      const lines = formatStatus(status);
      lines.forEach((line) => this.log.info(`status ${line}`));
      void vscode.window.showInformationMessage("codekin status", { modal: true, detail: lines.join("\n") });
    }
    return status;
  }

  private async showStatus(): Promise<void> {
    if (!this.server.running) {
      const choice = await vscode.window.showWarningMessage("codekin: the language server is not running.", "Restart Server", "Show Log");
      if (choice === "Restart Server") {
        await this.server.restart("requested from the status");
      } else if (choice === "Show Log") {
        this.log.show();
      }
      return;
    }
    await this.refreshStatus(true);
  }
}
