/** The status-bar item: server state and index size; click shows the full status. */
import * as vscode from "vscode";

import { statusView, type ServerState, type StatusResponse } from "./status";

export class StatusBar implements vscode.Disposable {
  private readonly item: vscode.StatusBarItem;
  private state: ServerState = "stopped";
  private status: StatusResponse | undefined;
  private error: string | undefined;

  constructor() {
    this.item = vscode.window.createStatusBarItem("codekin.status", vscode.StatusBarAlignment.Right, 100);
    this.item.name = "codekin";
    this.item.command = "codekin.showStatus";
    this.render();
    this.item.show();
  }

  setState(state: ServerState, error?: string): void {
    this.state = state;
    this.error = error;
    if (state !== "running") {
      this.status = undefined;
    }
    this.render();
  }

  setStatus(status: StatusResponse): void {
    this.status = status;
    this.render();
  }

  private render(): void {
    const view = statusView(this.state, this.status, this.error);
    this.item.text = view.text;
    this.item.tooltip = view.tooltip;
    this.item.backgroundColor = view.warning ? new vscode.ThemeColor("statusBarItem.warningBackground") : undefined;
  }

  dispose(): void {
    this.item.dispose();
  }
}
