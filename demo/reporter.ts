/** How the update story is told: what it hands to whoever shows it (demo.ts prints it, the benchmark does not). */

/** A line of what the processes said, as it happened: `at` is their own clock (epoch ms). */
export interface LiveLine {
  readonly at: number;
  readonly who: 'A' | 'B' | 'updater' | 'server';
  readonly kind: 'state' | 'progress' | 'journal' | 'log' | 'warn';
  readonly text: string;
  readonly progress?: { readonly bytes: number; readonly total: number; readonly percent: number };
}

/** How the story is told. Every method may do nothing (the benchmark's reporter). */
export interface StoryReporter {
  /** A numbered step begins ("3. Publish version B"); `at` when it began earlier than now (epoch ms). */
  step(text: string, at?: number): void;
  /** Something checked and found as it should be. */
  ok(text: string): void;
  /** Something worth saying that is not a check (a fallback, a wait). */
  note(text: string): void;
  /** A short excerpt: a status object, a log line. */
  quote(text: string): void;
  live(line: LiveLine): void;
}

export const SILENT: StoryReporter = { step() {}, ok() {}, note() {}, quote() {}, live() {} };
