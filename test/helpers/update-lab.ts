/**
 * Shared by the end-to-end update tests: two small releases, the most recent job's journal, and a
 * running 1.0.0 agent following a ReleaseLab with the hand-off on. The agent's log and status: agent.ts.
 */
import { createPlatform } from '../../app/main/platform/index.js';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { pathToFileURL } from 'node:url';
import { type JobJournal, readJournal } from '../../app/base/update-records.js';
import { OUTPOST_BIN, REPO_ROOT } from './paths.js';
import { logOf, statusIfRunning } from './agent.js';
import { Child, startRunningAgent } from './processes.js';
import { ReleaseLab, treeOf } from './release-lab.js';
import { until } from './wait.js';

export const V1 = { 'main.js': 'console.log("v1")\n', 'lib/util.js': 'exports.x = 1\n'.repeat(500) };
export const V2 = { ...V1, 'main.js': 'console.log("v2")\n' };

/** push-coalescing and redaction tests import it from here; the one definition is agent.ts's. */

/** Agents started by the updater are not children of the test: stop whatever holds the home at the end. */
export function stopWhateverRuns(t: { after: (fn: () => Promise<void>) => void }, home: string, install: string): void {
  t.after(async () => {
    const status = await statusIfRunning(home, install).catch(() => null);
    if (status) process.kill(status.pid, 'SIGKILL');
  });
}

/** The most recent job's journal file, or undefined before the updater wrote its first line. */
function lastJournalFile(home: string): string | undefined {
  const updates = path.join(home, 'updates');
  if (!fs.existsSync(updates)) return undefined;
  return fs
    .readdirSync(updates)
    .filter((n) => n.startsWith('journal-'))
    .map((n) => path.join(updates, n))
    .sort((x, y) => fs.statSync(x).mtimeMs - fs.statSync(y).mtimeMs)
    .at(-1);
}

/** The entries of the most recent job's journal (there must be one). */
export function lastJournal(home: string) {
  const journal = lastJournalFile(home);
  assert.ok(journal, 'a journal');
  return readJournal(journal);
}

/** A journal as lines a test can compare: `step:phase` for each step, then `outcome:<outcome>` once it ended. */
export function journalLines(journal: JobJournal): string[] {
  return [...journal.steps.map((e) => `${e.step}:${e.phase}`), ...(journal.outcome ? [`outcome:${journal.outcome.outcome}`] : [])];
}

/**
 * The lines of the most recent job's journal (journalLines); none before its first line is written,
 * which may come a moment after the old agent has exited (the updater confirms it runs, then journals).
 */
export function journalSteps(home: string): string[] {
  const journal = lastJournalFile(home);
  return journal ? journalLines(readJournal(journal)) : [];
}

/** The agents started after this point stage new releases and wait (the test wants the state the job left). */
export function noMoreHandOffs(home: string): void {
  const configFile = path.join(home, 'config.json');
  const config = JSON.parse(fs.readFileSync(configFile, 'utf8'));
  fs.writeFileSync(configFile, JSON.stringify({ ...config, update: { ...config.update, hand_off: false } }));
}

/** Whether `pid` still runs, as the product judges it: a zombie (exited, not yet reaped by its parent) has not. */
export function isAlive(pid: number): boolean {
  return createPlatform().isProcessAlive(pid);
}

/** An installed build's own entry point, which starts the agent: the updater launches whatever main.mjs is installed. */
export const AGENT_ENTRY = `import ${JSON.stringify(pathToFileURL(OUTPOST_BIN).href)};\n`;

/** A lab whose agent A runs 1.0.0 (hand-off on), has made its first check, and is stopped at the end. */
export async function runningA(t: { after: (fn: () => Promise<void> | void) => void }, env: NodeJS.ProcessEnv = {}) {
  const lab = new ReleaseLab(t);
  await lab.startServer();
  const home = lab.home({ update: { hand_off: true } });
  const install = lab.app('1.0.0', V1);
  const v1Tree = treeOf(install);
  lab.publish(install, '1.0.0');
  const a = await startRunningAgent(home, { OUTPOST_INSTALL_DIR: install, ...env });
  t.after(() => a.kill('SIGKILL'));
  stopWhateverRuns(t, home, install);
  await until('the first check', () => logOf(home).includes('no update: 1.0.0 is the version'));
  return { lab, home, install, v1Tree, a };
}


/** What updates/ holds beyond the job's record (job.json, journal, last-update.json), the last download's cost and the TUF metadata. */
export function leftovers(home: string): string[] {
  const kept = /^(job\.json|journal-.*\.jsonl|last-update\.json|last-download\.json|metadata)$/;
  return fs.readdirSync(path.join(home, 'updates')).filter((name) => !kept.test(name));
}


/**
 * A copy of the job the agent handed over (job.json) and the updater's pid (its ready file), taken as
 * soon as the old agent has exited: the agents after it remove both once the job has ended.
 */
export function keepJob(home: string, dir: string): { jobFile: string; updaterPid: number } {
  const updates = path.join(home, 'updates');
  const jobFile = path.join(dir, 'job.json');
  fs.copyFileSync(path.join(updates, 'job.json'), jobFile);
  const ready = fs.readdirSync(updates).find((n) => n.endsWith('.ready'));
  assert.ok(ready, 'the updater confirmed it runs');
  return { jobFile, updaterPid: (JSON.parse(fs.readFileSync(path.join(updates, ready), 'utf8')) as { pid: number }).pid };
}

/** `outpost-updater ARGS` as the script (what the crash tests recover with). */
export function runUpdater(args: readonly string[], env: NodeJS.ProcessEnv) {
  return new Child(process.execPath, [path.join(REPO_ROOT, 'bin', 'outpost-updater.js'), ...args], { ...process.env, ...env }).finish(60_000);
}
