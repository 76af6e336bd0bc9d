/**
 * The agent during a real update, in each of its UPDATING_* states (enumerated from AGENT_STATES, so a
 * new state cannot be added without these tests): `--force` is refused and the update completes; a
 * SIGKILL leaves a state from which the next start completes the update. The agent is held in the
 * state until the test releases it (OUTPOST_TEST_HOLD_STATE, a switch of development builds only), so
 * the test acts while it really is there; the hold is checked with `outpost status` first.
 */
import assert from 'node:assert/strict';
import crypto from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { type TestContext, test } from 'node:test';
import { storagePaths } from '../../app/base/storage-layout.js';
import { appendJournal, ownerRecordText, writeJob } from '../../app/base/update-records.js';
import { AGENT_STATES, isUpdatingState } from '../../app/common/agent-state.js';
import type { StatusLine } from '../../app/common/cli-output.js';
import type { UpdaterJob } from '../../app/common/update-files.js';
import { createPlatform } from '../../app/main/platform/index.js';
import { logOf, statusIfRunning } from '../helpers/agent.js';
import { tempDir } from '../helpers/paths.js';
import { runOutpost, startRunningAgent } from '../helpers/processes.js';
import { ReleaseLab, treeOf } from '../helpers/release-lab.js';
import { stopWhateverRuns, V1, V2 } from '../helpers/update-lab.js';
import { until } from '../helpers/wait.js';

const UPDATING_STATES = AGENT_STATES.filter(isUpdatingState);

/** A running 1.0.0 that will hold in `state` once 1.1.0 is published, and 1.1.0's tree. */
async function updatingAgent(t: TestContext, state: string) {
  const lab = new ReleaseLab(t);
  await lab.startServer();
  const home = lab.home({ update: { hand_off: true } });
  const install = lab.app('1.0.0', V1);
  lab.publish(install, '1.0.0');
  // The agent stays in `state` until this file exists.
  const release = path.join(path.dirname(home), `release-${state}`);
  const a = await startRunningAgent(home, { OUTPOST_INSTALL_DIR: install, OUTPOST_TEST_HOLD_STATE: `${state}:${release}` });
  t.after(() => a.kill('SIGKILL'));
  stopWhateverRuns(t, home, install);
  await until('the first check', () => logOf(home).includes('no update: 1.0.0 is the version'));
  const v2 = lab.app('1.1.0', V2);
  lab.publish(v2, '1.1.0');
  const held = await until(`A in ${state}`, async () => {
    const status = await statusIfRunning(home, install);
    return status?.state === state && status;
  });
  assert.equal(held.pid, a.pid);
  return { lab, home, install, a, v2, release: () => fs.writeFileSync(release, '') };
}

async function updated(home: string, install: string, v2: string): Promise<StatusLine> {
  const b = await until('1.1.0 healthy', async () => {
    const status = await statusIfRunning(home, install);
    return status?.version === '1.1.0' && status.state === 'IDLE' && status;
  }, 60_000);
  await until('the commit', () => fs.existsSync(path.join(home, 'updates', 'last-update.json')));
  assert.equal(JSON.parse(fs.readFileSync(path.join(home, 'updates', 'last-update.json'), 'utf8')).outcome, 'committed');
  assert.deepEqual(treeOf(install), treeOf(v2), 'the installation is 1.1.0, complete');
  return b;
}

for (const state of UPDATING_STATES) {
  test(`--force and --quit in ${state} during a real update are refused (busy_updating), and the update completes`, async (t) => {
    const { home, install, a, v2, release } = await updatingAgent(t, state);
    const forced = await runOutpost(home, ['--force'], { OUTPOST_INSTALL_DIR: install });
    assert.equal(forced.code, 3, forced.stderr);
    assert.match(forced.stderr, new RegExp(`refused to restart: the agent is updating \\(${state}\\)`));
    assert.doesNotMatch(forced.stderr, /running \(pid/, 'no second instance started');
    const quit = await runOutpost(home, ['--quit'], { OUTPOST_INSTALL_DIR: install });
    assert.equal(quit.code, 3, quit.stderr);
    assert.match(quit.stderr, new RegExp(`refused to quit: the agent is updating \\(${state}\\)`), 'an installer cannot stop it halfway either');
    assert.equal(a.process.exitCode, null, 'the agent still runs');
    release();
    const old = await a.finish(60_000);
    assert.equal(old.code, 0, old.stderr);
    assert.match(old.stderr, /handed over to the updater for 1\.1\.0/);
    const b = await updated(home, install, v2);
    assert.notEqual(b.pid, a.pid);
  });

  test(`SIGKILL of the agent in ${state}: the next start completes the update, one complete version runs`, async (t) => {
    const { home, install, a, v2 } = await updatingAgent(t, state);
    a.kill('SIGKILL');
    const killed = await a.finish();
    assert.equal(killed.signal, 'SIGKILL');
    assert.deepEqual(
      fs.readdirSync(path.dirname(install)).filter((n) => n.startsWith(path.basename(install))),
      [path.basename(install)],
      'no backup or half-swapped copy beside the installation',
    );
    // What the login item does next: start the agent (1.0.0, without the hold).
    const again = await startRunningAgent(home, { OUTPOST_INSTALL_DIR: install });
    t.after(() => again.kill('SIGKILL'));
    const finished = await again.finish(60_000);
    assert.equal(finished.code, 0, finished.stderr);
    await updated(home, install, v2);
    assert.match(logOf(home), /Outpost 1\.1\.0 starting/);
  });
}

test('--quit and --force between the old agent handing over and the new one starting, while only the updater runs: refused (3); once it is gone, nothing to stop', async (t) => {
  const home = tempDir(t);
  const updates = storagePaths(home).updates;
  fs.mkdirSync(path.dirname(updates.job), { recursive: true });
  const job: UpdaterJob = {
    job_id: crypto.randomUUID(),
    install_dir: path.join(home, 'install'),
    staged_dir: updates.stagedTree('1.1.0'),
    backup_dir: path.join(home, 'install.outpost-backup'),
    old_pid: 1,
    old_version: '1.0.0',
    new_version: '1.1.0',
    launch: { command: process.execPath, args: [] },
    storage: home,
    exit_timeout_ms: 30_000,
    health_timeout_ms: 60_000,
  };
  writeJob(updates, job);
  appendJournal(updates.journal(job.job_id), { step: 'backup', phase: 'begin', at: new Date().toISOString() });
  // This test process stands in for the updater at work: its ready file names a live process.
  fs.writeFileSync(updates.readyFile(job.job_id), ownerRecordText(createPlatform()));
  for (const [flag, verb] of [
    ['--quit', 'quit'],
    ['--force', 'restart'],
  ] as const) {
    const refused = await runOutpost(home, [flag]);
    assert.equal(refused.code, 3, refused.stderr);
    assert.equal(refused.stderr, `outpost: Cannot ${verb} now: the updater is applying the update 1.0.0 -> 1.1.0; try again when it is done.\n`);
  }
  // The updater has gone (the job interrupted: the next agent's start recovers it): nothing runs to stop.
  fs.rmSync(updates.readyFile(job.job_id));
  const quit = await runOutpost(home, ['--quit']);
  assert.equal(quit.code, 0, quit.stderr);
  assert.match(quit.stderr, /no agent was running .*; nothing to stop/);
});
