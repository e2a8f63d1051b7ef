/**
 * Debounced "search as you type": only the latest query runs after a pause, and a response
 * to an older query is dropped when a newer one was typed meanwhile. No `vscode` import.
 */

export interface LiveSearchHandlers<T> {
  /** Runs one query (e.g. the codekin.search request). */
  run(query: string): Promise<T>;
  /** Receives the result of the latest query only. */
  deliver(query: string, result: T): void;
  /** Receives the error of the latest query only. */
  fail(query: string, error: unknown): void;
  /** Called with true when a query is pending or running, false when idle. */
  busy?(busy: boolean): void;
}

export class LiveSearch<T> {
  private timer: ReturnType<typeof setTimeout> | undefined;
  private latest = 0;
  private disposed = false;

  constructor(
    private readonly delayMs: number,
    private readonly handlers: LiveSearchHandlers<T>,
  ) {}

  /** A new query text; an empty one cancels what is pending. */
  update(query: string): void {
    if (this.disposed) {
      return;
    }
    clearTimeout(this.timer);
    const ticket = ++this.latest;
    const text = query.trim();
    if (text === "") {
      this.timer = undefined;
      this.handlers.busy?.(false);
      return;
    }
    this.handlers.busy?.(true);
    this.timer = setTimeout(() => {
      this.timer = undefined;
      void this.execute(ticket, text);
    }, this.delayMs);
  }

  private async execute(ticket: number, query: string): Promise<void> {
    let result: T;
    try {
      result = await this.handlers.run(query);
    } catch (error) {
      if (this.current(ticket)) {
        this.handlers.busy?.(false);
        this.handlers.fail(query, error);
      }
      return;
    }
    if (this.current(ticket)) {
      this.handlers.busy?.(false);
      this.handlers.deliver(query, result);
    }
  }

  private current(ticket: number): boolean {
    return !this.disposed && ticket === this.latest;
  }

  dispose(): void {
    this.disposed = true;
    clearTimeout(this.timer);
    this.timer = undefined;
  }
}
