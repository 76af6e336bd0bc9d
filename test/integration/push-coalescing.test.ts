/**
 * A push is never lost: pushes that arrive while a check runs (here held in UPDATING_DOWNLOADING until
 * the test releases it) queue exactly one more check after it, because they name a newer feed than
 * the one that check read. Without that, the newer release would wait for the next poll (an hour).
 */
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { test } from 'node:test';
import { startRunningAgent } from '../helpers/processes.js';
import { ReleaseLab, treeOf } from '../helpers/release-lab.js';
import { logOf } from '../helpers/agent.js';
import { until } from '../helpers/wait.js';

const app = (version: string) => ({ 'main.js': `console.log(${JSON.stringify(version)})\n` });
const count = (text: string, pattern: RegExp) => text.match(new RegExp(pattern, 'g'))?.length ?? 0;

test('two pushes during a check that read an older feed: exactly one more check follows it, and it stages the newest release (poll interval an hour)', async (t) => {
  const lab = new ReleaseLab(t);
  await lab.startServer();
  const home = lab.home({ pollS: 3600 });
  const install = lab.app('1.0.0', app('1.0.0'));
  lab.publish(install, '1.0.0');
  const release = path.join(lab.root, 'release-hold');
  const agent = await startRunningAgent(home, { OUTPOST_INSTALL_DIR: install, OUTPOST_TEST_HOLD_STATE: `UPDATING_DOWNLOADING:${release}` });
  t.after(() => agent.kill('SIGKILL'));
  await until('the first check', () => logOf(home).includes('no update: 1.0.0 is the version'));

  lab.publish(lab.app('1.1.0', app('1.1.0')), '1.1.0');
  await until('the check held in UPDATING_DOWNLOADING', () => logOf(home).includes('test hold: staying in UPDATING_DOWNLOADING'));
  const kept = () => count(logOf(home), /the push is kept, and checked after it/);
  lab.publish(lab.app('1.2.0', app('1.2.0')), '1.2.0');
  await until('the first push heard during the check', () => kept() === 1);
  const newest = lab.app('1.3.0', app('1.3.0'));
  lab.publish(newest, '1.3.0');
  await until('the second push heard during the check', () => kept() === 2);
  fs.writeFileSync(release, '');

  await until('the newest release staged', () => logOf(home).includes('1.3.0 staged complete and verified'), 30_000);
  await until('IDLE again', () => /state UPDATING_STAGING -> IDLE|update check done/.test(logOf(home).split('1.3.0 staged complete')[1] ?? ''));
  const log = logOf(home);
  assert.equal(count(log, /checking again: a push during the check named feed version \d+, newer than the \d+ it read/), 1, 'exactly one more check');
  assert.equal(count(log, /update check \(push\)/), 2, 'the push that started the first check, and the one more');
  assert.ok(log.includes('1.1.0 staged complete and verified'), 'the held check finished first');
  assert.deepEqual(treeOf(path.join(home, 'updates', '1.3.0')), treeOf(newest));
  agent.kill('SIGTERM');
  assert.equal((await agent.finish()).code, 0);
});
