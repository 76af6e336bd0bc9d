/** The story's clock: the milestones seen (epoch ms, by the processes' own clocks) and the phases between them. */
import { Failure } from './failure.js';

export interface Phase {
  readonly name: string;
  readonly what: string;
  readonly ms: number;
}

/** The phases, each ending at a milestone; a phase starts where the previous one ended. */
const PHASES: ReadonlyArray<{ name: string; what: string; until: string }> = [
  { name: 'publish', what: 'outpost-release publish: B signed and written into the feed, timestamp.json last', until: 'published' },
  { name: 'push heard', what: 'the server sees the new timestamp.json and pushes; A hears it on its WebSocket', until: 'push heard' },
  { name: 'check', what: 'TUF refresh, channel pointer, manifest; install/ cut into chunks: the chunks A lacks', until: 'state:UPDATING_DOWNLOADING' },
  { name: 'download', what: 'the chunks A lacks, each verified as it arrives', until: 'state:UPDATING_VERIFYING' },
  { name: 'verify', what: 'every chunk the staging needs is there', until: 'state:UPDATING_STAGING' },
  { name: 'stage', what: "B's complete tree built from install/ and the chunks, every file checked", until: 'state:UPDATING_HANDOFF' },
  { name: 'hand-off', what: 'job written, updater copied beside it and started, until it confirms', until: 'wait_old_exit:begin' },
  { name: 'wait_old_exit', what: 'A shuts down and releases its lock', until: 'wait_old_exit:end' },
  { name: 'backup', what: 'installation renamed to <install>.outpost-backup', until: 'backup:end' },
  { name: 'swap', what: 'the staged tree renamed into place', until: 'swap:end' },
  { name: 'launch', what: 'B started, detached', until: 'launch:end' },
  { name: 'health', what: 'B takes the lock, reaches IDLE, writes its health record', until: 'health:end' },
  { name: 'commit', what: 'the point of no return: backup and staged copy removed', until: 'commit:end' },
];

export class Timeline {
  readonly #milestones = new Map<string, number>();

  /** Records `name` at `at`, over an earlier record of it. */
  set(name: string, at: number): void {
    this.#milestones.set(name, at);
  }

  /** Records `name` at `at` unless it was seen before: the first time counts. */
  first(name: string, at: number): void {
    if (!this.#milestones.has(name)) this.#milestones.set(name, at);
  }

  has(name: string): boolean {
    return this.#milestones.has(name);
  }

  get(name: string): number | undefined {
    return this.#milestones.get(name);
  }

  milestone(name: string): number {
    const at = this.#milestones.get(name);
    if (at === undefined) throw new Failure(`no time recorded for "${name}"`);
    return at;
  }

  since(from: string, to: string): number {
    return this.milestone(to) - this.milestone(from);
  }

  /** Consecutive phases from the start of the publish of B to its commit: they add up to since('publish', 'commit:end'). */
  phases(): Phase[] {
    const phases: Phase[] = [];
    let from = this.milestone('publish');
    for (const { name, what, until } of PHASES) {
      const to = this.milestone(until);
      // A milestone seen before the previous one (the push can arrive before the publishing process has
      // exited) ends a phase of 0 ms; the phases still add up to the total.
      phases.push({ name, what, ms: Math.max(0, to - from) });
      from = Math.max(from, to);
    }
    return phases;
  }
}
