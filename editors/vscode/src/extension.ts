/**
 * codekin for VS Code: find similar code, semantic search and similarity code lenses from a
 * local codekin index, through the `codekin serve` language server.
 */
import * as vscode from "vscode";

import { Commands } from "./commands";
import { CodekinServer } from "./server";
import { StatusBar } from "./statusBar";

const STATUS_REFRESH_MS = 30_000;

let server: CodekinServer | undefined;

export async function activate(context: vscode.ExtensionContext): Promise<void> {
  const log = vscode.window.createOutputChannel("codekin", { log: true });
  const statusBar = new StatusBar();
  context.subscriptions.push(log, statusBar);

  const refresh = (): void => {
    commands.refreshStatus().catch((error: unknown) => {
      log.warn(`status: ${error instanceof Error ? error.message : String(error)}`);
    });
  };
  server = new CodekinServer(log, {
    onState: (state, error) => {
      statusBar.setState(state, error);
      if (state === "running") {
        refresh();
      }
    },
    onLensResult: (response) => {
      commands.showLensResult(response).catch((error: unknown) => {
        void vscode.window.showErrorMessage(`codekin: ${error instanceof Error ? error.message : String(error)}`);
      });
    },
  });
  const commands = new Commands(server, statusBar, log);
  commands.register(context);
  context.subscriptions.push(server);

  const timer = setInterval(refresh, STATUS_REFRESH_MS);
  context.subscriptions.push(
    { dispose: () => clearInterval(timer) },
    vscode.workspace.onDidSaveTextDocument(refresh),
    vscode.workspace.onDidChangeConfiguration((event) => {
      if (event.affectsConfiguration("codekin")) {
        void server?.restart("settings changed");
      }
    }),
  );
  await server.start();
}

export async function deactivate(): Promise<void> {
  await server?.stop();
  server = undefined;
}
