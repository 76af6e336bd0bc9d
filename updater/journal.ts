import { appendJournal, type JobJournal, readJournal } from '../app/base/update-records.js';
import type { JournalStep, StepEntry, UpdateOutcome } from '../app/common/update-files.js';

/**
 * The updater's journal: an append-only file of JSON lines, each fsynced before the step it
 * announces is taken (and after it is done), so that whoever runs next, after a crash at any moment,
 * knows how far the job went. The outcome is its last line. A torn last line (a crash mid-append) is
 * ignored by readers.
 */
export class Journal {
  readonly #file: string;
  readonly #now: () => Date;
  readonly #crashAt: string | undefined;

  /**
   * `crashAt` ("step:phase") is for the crash tests of a development build only (TestSwitch
   * UPDATER_CRASH_AT): the process kills itself with SIGKILL right after writing that entry, which is
   * how every crash point is reached for real.
   */
  constructor(file: string, now: () => Date, crashAt?: string) {
    this.#file = file;
    this.#now = now;
    this.#crashAt = crashAt;
  }

  step(step: JournalStep, phase: StepEntry['phase'], detail?: StepEntry['detail']): void {
    appendJournal(this.#file, { step, phase, at: this.#now().toISOString(), ...(detail && { detail }) });
    if (this.#crashAt === `${step}:${phase}`) process.kill(process.pid, 'SIGKILL');
  }

  outcome(outcome: UpdateOutcome, reason: string | null): void {
    appendJournal(this.#file, { outcome, reason, at: this.#now().toISOString() });
  }

  read(): JobJournal {
    return readJournal(this.#file);
  }
}
