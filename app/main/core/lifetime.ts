import type { Logger } from '../../base/logger.js';

interface Step {
  readonly name: string;
  readonly dispose: () => void | Promise<void>;
}

/**
 * Owns what start-up built (timers, locks, servers...) and takes it down in reverse order, in one
 * place. A step that fails is logged and the others still run: a broken log must not keep the lock.
 */
export class Lifetime {
  readonly #steps: Step[] = [];
  #disposed = false;

  add(name: string, dispose: () => void | Promise<void>): void {
    if (this.#disposed) throw new Error(`cannot add "${name}" to a lifetime that has ended`);
    this.#steps.push({ name, dispose });
  }

  async dispose(log: Logger): Promise<void> {
    if (this.#disposed) return;
    this.#disposed = true;
    for (const step of this.#steps.reverse()) {
      try {
        await step.dispose();
        log.debug(`shutdown: ${step.name} stopped`);
      } catch (error) {
        log.error(`shutdown: ${step.name} failed to stop; continuing`, { error: String(error) });
      }
    }
  }
}
