/**
 * Following the story's processes as they go: the agent's log, the updater's journal and the server's
 * output, read as they grow. Each line worth showing becomes a LiveLine, handed on in the order the
 * processes wrote them (by their own clocks), and each milestone is recorded in the timeline.
 */
import fs from 'node:fs';
import path from 'node:path';
import { storagePaths } from '../app/base/storage-layout.js';
import { readJournal } from '../app/base/update-records.js';
import type { Lab } from './lab.js';
import type { LiveLine } from './reporter.js';
import type { Timeline } from './timeline.js';
import { listFiles } from './trees.js';

export interface FollowerOptions {
  readonly lab: Lab;
  readonly timeline: Timeline;
  /** The version being published: its reports at the server are milestones. */
  readonly newVersion: string;
  /** Told each line, in time order. */
  readonly onLine: (line: LiveLine) => void;
}

/** The agent's log lines shown while it updates; the others are left out. */
const SHOWN = [
  /^push: /,
  /^update \S+ -> \S+: \d+ files/,
  /staged complete/,
  /^updater running/,
  /^started .* \(pid \d+\)$/,
  /^Outpost \S+ starting/,
  /^current_version /,
  /^told the updater/,
  /committed/,
  /^updater done/,
];

export class Follower {
  readonly #lab: Lab;
  readonly #timeline: Timeline;
  readonly #newVersion: string;
  readonly #onLine: (line: LiveLine) => void;
  #timer: NodeJS.Timeout | undefined;
  readonly #pending: LiveLine[] = [];
  #logOffset = 0;
  #logPartial = '';
  #journalFile: string | undefined;
  #journalSeen = 0;
  readonly #begun = new Map<string, number>();
  #outcome: string | undefined;
  #outcomeReason: string | undefined;
  #launchedPid: number | undefined;

  constructor(options: FollowerOptions) {
    this.#lab = options.lab;
    this.#timeline = options.timeline;
    this.#newVersion = options.newVersion;
    this.#onLine = options.onLine;
  }

  /** How the updater's job ended (its journal's outcome entry), once it has. */
  get outcome(): string | undefined {
    return this.#outcome;
  }

  get outcomeReason(): string | undefined {
    return this.#outcomeReason;
  }

  /** The pid of the new version, as the updater's journal recorded its launch. */
  get launchedPid(): number | undefined {
    return this.#launchedPid;
  }

  start(): void {
    this.#timer = setInterval(() => this.poll(), 15);
  }

  /** Stops following, after a last look. */
  stop(): void {
    if (this.#timer) this.poll();
    clearInterval(this.#timer);
    this.#timer = undefined;
  }

  /** New log lines and journal entries since the last look, told in the order they happened. */
  poll(): void {
    // The journal first: its launch entry tells A's log lines from B's.
    this.#readJournal();
    this.#readLog();
    this.#pending.sort((x, y) => x.at - y.at);
    for (const line of this.#pending.splice(0)) this.#onLine(line);
  }

  /** A line the server wrote on stderr: told with the next look. */
  onServerLine(line: string): void {
    const match = /^(\d{4}-\d\d-\d\dT\S+Z) (.*)$/.exec(line);
    if (!match || !this.#timeline.has('publish')) return;
    const at = Date.parse(match[1] as string);
    const text = this.#lab.short(match[2] as string);
    if (/feed version \d+ published: pushed to/.test(text)) this.#timeline.set('server pushed', at);
    const report = /^reports: stored \S+ \((\w+) from agent \S+ (\S+)\)/.exec(text);
    if (report && report[2] === this.#newVersion) this.#timeline.set(`report:${report[1]}`, at);
    this.#pending.push({ at, who: 'server', kind: 'log', text });
  }

  #readLog(): void {
    const file = path.join(this.#lab.home, 'logs', 'outpost.log');
    let fd: number;
    try {
      fd = fs.openSync(file, 'r');
    } catch {
      return;
    }
    try {
      const size = fs.fstatSync(fd).size;
      if (size < this.#logOffset) this.#logOffset = 0; // rotated
      if (size === this.#logOffset) return;
      const buffer = Buffer.alloc(size - this.#logOffset);
      fs.readSync(fd, buffer, 0, buffer.length, this.#logOffset);
      this.#logOffset = size;
      const lines = (this.#logPartial + buffer.toString('utf8')).split('\n');
      this.#logPartial = lines.pop() ?? '';
      for (const line of lines) this.#onLogLine(line);
    } finally {
      fs.closeSync(fd);
    }
  }

  #onLogLine(line: string): void {
    const match = /^\[(\S+)\] \[(\w+)\] (?:\[([\w.-]+)\] )?(.*)$/.exec(line);
    if (!match) return;
    const at = Date.parse(match[1] as string);
    const level = match[2] as string;
    const scope = match[3] ?? '';
    const text = this.#lab.short(match[4] as string);
    const launched = this.#timeline.get('launch:begin');
    const who = scope.startsWith('updater') ? 'updater' : launched !== undefined && at >= launched ? 'B' : 'A';
    const updating = this.#timeline.has('publish');
    const state = /^state (\S+) -> (\S+): (.*)$/.exec(text);
    if (state) {
      if (updating) {
        this.#timeline.first(`${who === 'B' ? 'B:' : ''}state:${state[2]}`, at);
        this.#pending.push({ at, who, kind: 'state', text });
      }
      return;
    }
    const progress = /^UPDATING_DOWNLOADING: (\d+)% \((\d+) of (\d+) bytes\)/.exec(text);
    if (progress) {
      this.#pending.push({ at, who, kind: 'progress', text, progress: { percent: Number(progress[1]), bytes: Number(progress[2]), total: Number(progress[3]) } });
      return;
    }
    if (/^push: agent:update_required/.test(text) && updating) this.#timeline.first('push heard', at);
    if (!updating) return;
    if ((level === 'warn' || level === 'error') && !/update\.trust_file/.test(text)) {
      this.#pending.push({ at, who, kind: 'warn', text: `${level}: ${text}` });
      return;
    }
    if (SHOWN.some((p) => p.test(text))) this.#pending.push({ at, who, kind: 'log', text: text.replace(/ storage=\S+| storage_source=\S+| elevated=\S+/g, '') });
  }

  #readJournal(): void {
    this.#journalFile ??= listFiles(storagePaths(this.#lab.home).updates.dir).find((f) => /journal-.*\.jsonl$/.test(f));
    if (!this.#journalFile) return;
    // Whole lines only (the reader leaves out a half-written last one).
    const { steps, outcome } = readJournal(this.#journalFile);
    for (const entry of steps.slice(this.#journalSeen)) {
      const at = Date.parse(entry.at);
      this.#timeline.first(`${entry.step}:${entry.phase}`, at);
      if (entry.phase === 'begin') this.#begun.set(entry.step, at);
      const begun = this.#begun.get(entry.step);
      const took = entry.phase !== 'begin' && begun !== undefined ? ` (${at - begun} ms)` : '';
      let text = `${entry.step} ${entry.phase === 'begin' ? '...' : entry.phase === 'end' ? `done${took}` : `FAILED${took}: ${entry.detail?.message ?? ''}`}`;
      if (entry.step === 'launch' && entry.phase === 'end') {
        this.#launchedPid = Number(entry.detail?.pid);
        text += `: B is pid ${this.#launchedPid}`;
      }
      this.#pending.push({ at, who: 'updater', kind: 'journal', text: `journal: ${text}` });
    }
    this.#journalSeen = Math.max(this.#journalSeen, steps.length);
    if (outcome && this.#outcome === undefined) {
      const at = Date.parse(outcome.at);
      this.#outcome = outcome.outcome;
      this.#outcomeReason = outcome.reason ?? undefined;
      this.#timeline.set('outcome', at);
      this.#pending.push({ at, who: 'updater', kind: 'journal', text: `journal: outcome: ${this.#outcome}${this.#outcomeReason ? ` (${this.#outcomeReason})` : ''}` });
    }
  }
}
