/**
 * SIGKILL of the updater at every entry of its journal, forward and rollback, enumerated from the
 * updater's own lists of steps (a new step cannot be added without being crashed here), and an agent
 * started over a job whose updater died.
 */
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { test } from 'node:test';
import { storagePaths } from '../../app/base/storage-layout.js';
import { ExitCode } from '../../app/common/exit-codes.js';
import { FORWARD_STEPS, ROLLBACK_STEPS } from '../../app/common/update-files.js';
import { bufferedReports, statusIfRunning } from '../helpers/agent.js';
import { tempDir } from '../helpers/paths.js';
import { runOutpost } from '../helpers/processes.js';
import { treeOf } from '../helpers/release-lab.js';
import { isAlive, journalSteps, keepJob, noMoreHandOffs, runningA, runUpdater, V2 } from '../helpers/update-lab.js';
import { until } from '../helpers/wait.js';

// Every crash point of the updater, taken from its own list of steps: a new step cannot be added
// without being crashed here too.
const CRASH_POINTS = FORWARD_STEPS.flatMap((step) => [`${step}:begin`, `${step}:end`]);

for (const point of CRASH_POINTS) {
  test(`SIGKILL of the updater at ${point}: recovery leaves exactly one complete version installed and running`, async (t) => {
    const { lab, home, install, v1Tree, a } = await runningA(t, { OUTPOST_UPDATER_TEST_CRASH_AT: point });
    const v2 = lab.app('1.1.0', V2);
    lab.publish(v2, '1.1.0');
    await a.finish(30_000);
    const { jobFile, updaterPid } = keepJob(home, tempDir(t));
    // An agent that a recovery starts would try 1.1.0 again (that is the design: two tries); here the
    // test wants the state recovery itself leaves, so the agents after A stage and wait.
    noMoreHandOffs(home);
    const journal = await until('the crash', () => {
      const steps = journalSteps(home);
      return steps.at(-1) === point && steps;
    });
    assert.ok(!journal.some((line) => line.startsWith('outcome:')), 'the job did not end');
    await until('the updater gone', () => !isAlive(updaterPid));

    const recovery = await runUpdater(['--job', jobFile, '--recover'], { OUTPOST_INSTALL_DIR: install });
    // From health:end on, the new version has proved itself (its health record): recovery keeps it.
    const committed = point.startsWith('commit:') || point === 'health:end';
    const beforeChanges = point.startsWith('wait_old_exit:');
    // The new version, once launched, may find the updater gone and start a recovery of its own; then
    // this one waits for it and reports its outcome. Either way the outcome is the same.
    const outcome = committed ? 'committed' : beforeChanges ? 'aborted' : 'rolled_back';
    assert.equal(recovery.code, { committed: ExitCode.OK, rolled_back: ExitCode.UPDATE_ROLLED_BACK, aborted: ExitCode.UPDATE_ABORTED }[outcome], `${outcome} expected; ${recovery.stderr}`);
    assert.equal(JSON.parse(fs.readFileSync(path.join(home, 'updates', 'last-update.json'), 'utf8')).outcome, outcome);
    const expected = committed ? '1.1.0' : '1.0.0';
    const running = await until(`${expected} running`, async () => {
      const status = await statusIfRunning(home, install);
      return status?.version === expected && status.state === 'IDLE' && status;
    });
    assert.ok(running.pid > 0);
    assert.deepEqual(treeOf(install), committed ? treeOf(v2) : v1Tree, `the installation is ${expected}, complete`);
    assert.equal(fs.existsSync(`${install}.outpost-backup`), false, 'no backup left over');
  });
}

// Every crash point of a rollback (B broken: it exits at once, so health fails), from ROLLBACK_STEPS.
for (const point of ROLLBACK_STEPS.flatMap((step) => [`${step}:begin`, `${step}:end`])) {
  test(`SIGKILL of the updater at ${point} of a rollback: recovery leaves A installed and running, the failure counted and reported once`, async (t) => {
    const { lab, home, install, v1Tree, a } = await runningA(t, { OUTPOST_UPDATER_TEST_CRASH_AT: point });
    const broken = lab.app('1.1.0', V2);
    fs.writeFileSync(path.join(broken, 'package.json'), '{"name":"outpost-test-app"}');
    lab.publish(broken, '1.1.0');
    await a.finish(30_000);
    const { jobFile } = keepJob(home, tempDir(t));
    noMoreHandOffs(home);
    await until('the crash', () => journalSteps(home).at(-1) === point);

    const recovery = await runUpdater(['--job', jobFile, '--recover'], { OUTPOST_INSTALL_DIR: install });
    assert.equal(recovery.code, ExitCode.UPDATE_ROLLED_BACK, `rolled back expected; ${recovery.stderr}`);
    await until('1.0.0 running', async () => {
      const status = await statusIfRunning(home, install);
      return status?.version === '1.0.0' && status.state === 'IDLE' && status;
    });
    assert.deepEqual(treeOf(install), v1Tree, 'the installation is 1.0.0, complete');
    assert.deepEqual(
      fs.readdirSync(path.dirname(install)).filter((n) => n.startsWith(path.basename(install))),
      [path.basename(install)],
      'no backup or failed copy left beside the installation',
    );
    const failures = JSON.parse(fs.readFileSync(path.join(home, 'updates', 'failed-versions.json'), 'utf8'));
    assert.equal(failures['1.1.0'].count, 1, 'the failure counted once');
    // Every report of this job was queued by an updater, and both updaters have exited: once the
    // agent's buffer is empty, all of them are at the server (taken out only once stored there).
    await until('the buffered reports delivered', () => lab.reports().length > 0 && bufferedReports(storagePaths(home).errorReports).length === 0);
    assert.equal(lab.reports().length, 1, `one report: ${lab.reports().map((r) => r.code).join(', ')}`);
  });
}


test('an agent started after the updater died mid-job (swap done) does not run the half-done update: it has the updater recover, and the old version comes back', async (t) => {
  const { lab, home, install, v1Tree, a } = await runningA(t, { OUTPOST_UPDATER_TEST_CRASH_AT: 'swap:end' });
  lab.publish(lab.app('1.1.0', V2), '1.1.0');
  await a.finish(30_000);
  await until('the crash', () => journalSteps(home).at(-1) === 'swap:end');
  noMoreHandOffs(home);

  // What a service manager or the login item does next: start the agent.
  const next = await runOutpost(home, [], { OUTPOST_INSTALL_DIR: install }, 30_000);
  assert.equal(next.code, 3, next.stderr);
  assert.match(next.stderr, /An interrupted update \(1\.0\.0 -> 1\.1\.0\) is being recovered/);
  const running = await until('1.0.0 running', async () => {
    const status = await statusIfRunning(home, install);
    return status?.version === '1.0.0' && status.state === 'IDLE' && status;
  });
  assert.ok(running.pid > 0);
  assert.deepEqual(treeOf(install), v1Tree);
  assert.equal(JSON.parse(fs.readFileSync(path.join(home, 'updates', 'last-update.json'), 'utf8')).outcome, 'rolled_back');
  await until('the report', () => lab.reports().find((r) => r.code === 'ERR_UPDATE_INTERRUPTED'));
});

