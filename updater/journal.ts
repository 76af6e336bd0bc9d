import type { JournalEntry } from '../app/common/updater-job.js';
import { appendLineDurable } from '../app/main/core/atomic-file.js';
import { readJournal } from '../app/main/core/update/job-journal.js';

/**
 * The updater's journal: an append-only file of JSON lines, each fsynced before the step it
 * announces is taken (and after it is done), so that whoever runs next, after a crash at any moment,
 * knows how far the job went. A torn last line (a crash mid-append) is ignored.
 */
export class Journal {
  readonly #file: string;
  readonly #now: () => Date;
  readonly #crashAt: string | undefined;

  /**
   * `crashAt` ("step:phase") is for the crash tests only: the process kills itself with SIGKILL right
   * after writing that entry, which is how every crash point is reached for real. The updater reads
   * it from OUTPOST_UPDATER_TEST_CRASH_AT.
   */
  constructor(file: string, now: () => Date, crashAt?: string) {
    this.#file = file;
    this.#now = now;
    this.#crashAt = crashAt;
  }

  append(step: string, phase: JournalEntry['phase'], detail?: JournalEntry['detail']): void {
    const entry: JournalEntry = { step, phase, at: this.#now().toISOString(), ...(detail && { detail }) };
    appendLineDurable(this.#file, `${JSON.stringify(entry)}\n`);
    if (this.#crashAt === `${step}:${phase}`) process.kill(process.pid, 'SIGKILL');
  }

  entries(): JournalEntry[] {
    return readJournal(this.#file);
  }
}

export { readJournal };
