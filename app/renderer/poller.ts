import type { DiagnosticsApi, DiagnosticsView, LogCursor } from '../common/diagnostics.js';

export interface PollerOptions {
  readonly api: Pick<DiagnosticsApi, 'read'>;
  /** The pause between the end of one read and the start of the next. */
  readonly intervalMs: number;
  readonly onView: (view: DiagnosticsView) => void;
  readonly onFailure: (error: unknown) => void;
}

/**
 * Reads the agent's view about once a second, one read at a time. The log cursor of each view is
 * where the next read starts, so each view brings only the lines written since (the first, none:
 * the latest lines).
 */
export class Poller {
  readonly #options: PollerOptions;
  #cursor: LogCursor | null = null;
  #timer: ReturnType<typeof setTimeout> | undefined;
  #reading = false;
  #disposed = false;

  constructor(options: PollerOptions) {
    this.#options = options;
  }

  /** Reads now (unless a read is under way), then keeps reading. */
  readNow(): void {
    if (this.#reading || this.#disposed) return;
    clearTimeout(this.#timer);
    void this.#read();
  }

  dispose(): void {
    this.#disposed = true;
    clearTimeout(this.#timer);
  }

  async #read(): Promise<void> {
    this.#reading = true;
    try {
      const view = await this.#options.api.read({ log_after: this.#cursor });
      if (this.#disposed) return;
      this.#cursor = view.log.cursor;
      this.#options.onView(view);
    } catch (error) {
      if (!this.#disposed) this.#options.onFailure(error);
    } finally {
      this.#reading = false;
      if (!this.#disposed) this.#timer = setTimeout(() => this.readNow(), this.#options.intervalMs);
    }
  }
}
