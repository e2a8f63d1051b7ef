/** The codekin language client: started from the settings, restarted when they change. */
import * as vscode from "vscode";
import {
  CodeLensRequest,
  ExecuteCommandRequest,
  LanguageClient,
  type LanguageClientOptions,
  type ServerOptions,
  State,
  TransportKind,
} from "vscode-languageclient/node";

import { readSettings, serverExecutable, toInitializationOptions, type Settings } from "./settings";
import type { ServerState } from "./status";

/** Languages whose documents the server sees (code lenses, find similar). */
export const LANGUAGES = ["elixir", "erlang", "c", "cpp", "heex", "eex"];
/** The same files by name, for when no extension defines the Elixir/Erlang languages. */
export const FILE_PATTERNS = "**/*.{ex,exs,heex,eex,erl,hrl}";

/** How many of a file's code lenses get their titles with the lenses themselves (resolveLenses). */
const EAGER_LENSES = 50;

/** A command for the server when no server is running, with what to do about it. */
export class ServerNotRunningError extends Error {
  constructor(detail: string) {
    super(`the codekin language server is not running (${detail}); check the codekin output channel, or run "codekin: Restart Server"`);
    this.name = "ServerNotRunningError";
  }
}

export interface ServerEvents {
  onState(state: ServerState, error?: string): void;
  /** A codekin.findSimilar that the client ran for a code lens, with its raw response. */
  onLensResult(response: unknown): void;
}

export class CodekinServer implements vscode.Disposable {
  private client: LanguageClient | undefined;
  private clientListener: vscode.Disposable | undefined;
  private current: Settings | undefined;
  private lastError = "not started";

  constructor(
    private readonly log: vscode.LogOutputChannel,
    private readonly events: ServerEvents,
  ) {}

  get settings(): Settings | undefined {
    return this.current;
  }

  get running(): boolean {
    return this.client?.state === State.Running;
  }

  async start(): Promise<void> {
    const { settings, problems } = readSettings((key) => vscode.workspace.getConfiguration("codekin").get(key));
    for (const problem of problems) {
      this.log.warn(problem);
      void vscode.window.showWarningMessage(problem);
    }
    this.current = settings;
    const folder = vscode.workspace.workspaceFolders?.[0];
    if (!folder) {
      this.lastError = "no folder is open";
      this.events.onState("stopped");
      return;
    }
    const { command, args } = serverExecutable(settings);
    const serverOptions: ServerOptions = {
      command,
      args,
      transport: TransportKind.stdio,
      options: { cwd: folder.uri.fsPath },
    };
    const clientOptions: LanguageClientOptions = {
      documentSelector: [
        ...LANGUAGES.map((language) => ({ scheme: "file", language })),
        { scheme: "file", pattern: FILE_PATTERNS },
      ],
      workspaceFolder: folder,
      initializationOptions: toInitializationOptions(settings),
      outputChannel: this.log,
      middleware: {
        provideCodeLenses: async (document, token, next) => {
          const lenses = await next(document, token);
          return lenses ? this.resolveLenses(document, lenses, token) : lenses;
        },
        executeCommand: async (name, commandArgs, next) => {
          const response: unknown = await next(name, commandArgs);
          if (name === "codekin.findSimilar") {
            this.events.onLensResult(response);
          }
          return response;
        },
      },
    };
    const client = new LanguageClient("codekin", "codekin", serverOptions, clientOptions);
    this.client = client;
    this.clientListener = client.onDidChangeState(({ newState }) => {
      if (newState === State.Starting) {
        this.events.onState("starting");
      } else if (newState === State.Running) {
        this.events.onState("running");
      } else {
        this.events.onState("stopped");
      }
    });
    this.log.info(`starting ${[command, ...args].join(" ")} in ${folder.uri.fsPath}`);
    this.events.onState("starting");
    try {
      await client.start();
      this.log.info("the server answered initialize");
    } catch (error) {
      this.lastError = `${command} failed to start: ${error instanceof Error ? error.message : String(error)}`;
      this.log.error(this.lastError);
      this.events.onState("failed", this.lastError);
      const choice = await vscode.window.showErrorMessage(
        `codekin: ${this.lastError}. Is codekin installed (pip install -e <codekin checkout>), or is "codekin.server.command" set?`,
        "Open Settings",
        "Show Log",
      );
      if (choice === "Open Settings") {
        await vscode.commands.executeCommand("workbench.action.openSettings", "codekin.server.command");
      } else if (choice === "Show Log") {
        this.log.show();
      }
    }
  }

  /** The first EAGER_LENSES lenses with their titles, resolved at once rather than in VS Code's own
   * resolve pass, which comes a debounce and a render later; the server computes a file's relatives
   * together, so the others cost little more than the first. VS Code resolves the rest when shown. */
  private async resolveLenses(document: vscode.TextDocument, lenses: vscode.CodeLens[],
    token: vscode.CancellationToken): Promise<vscode.CodeLens[]> {
    const provider = this.client?.getFeature(CodeLensRequest.method).getProvider(document)?.provider;
    const resolve = provider?.resolveCodeLens?.bind(provider);
    if (!resolve) {
      return lenses;
    }
    return Promise.all(lenses.map(async (lens, rank) =>
      (lens.command || rank >= EAGER_LENSES ? lens : ((await resolve(lens, token)) ?? lens))));
  }

  async stop(): Promise<void> {
    const client = this.client;
    this.client = undefined;
    this.clientListener?.dispose();
    this.clientListener = undefined;
    if (!client) {
      return;
    }
    if (client.isRunning()) {
      try {
        await client.stop();
      } catch (error) {
        this.log.warn(`stopping the server: ${error instanceof Error ? error.message : String(error)}`);
      }
    }
    this.events.onState("stopped");
  }

  async restart(reason: string): Promise<void> {
    this.log.info(`restarting the server: ${reason}`);
    await this.stop();
    await this.start();
  }

  /** Run one `codekin.*` command on the server (workspace/executeCommand, one argument object). */
  async execute(command: string, argument: object, token?: vscode.CancellationToken): Promise<unknown> {
    const client = this.client;
    if (!client || client.state !== State.Running) {
      throw new ServerNotRunningError(this.lastError);
    }
    return client.sendRequest(ExecuteCommandRequest.type, { command, arguments: [argument] }, token);
  }

  dispose(): void {
    void this.stop();
  }
}
