import assert from 'node:assert/strict';
import path from 'node:path';
import { test } from 'node:test';
import { DIST } from '../helpers/paths.js';
import { Child } from '../helpers/processes.js';

// The update story end to end: the updater's single executable may be built first (about 10-15 s
// when .cache/sea/ has none), then keys, feed, server, A, B; on a loaded 2-core machine a minute or more.
test('npm run demo: A takes B by push, the updater swaps, B comes back healthy; the phases are timed; exit 0', { timeout: 240_000 }, async () => {
  const demo = new Child(process.execPath, [path.join(DIST, 'demo', 'demo.js')], { ...process.env, NO_COLOR: '1' });
  const result = await demo.finish(230_000);
  assert.equal(result.code, 0, result.stdout + result.stderr);
  const out = result.stdout;
  assert.match(out, /Demo passed/);
  assert.match(out, /A {7}push: agent:update_required/, 'the push, heard by A');
  assert.match(out, /A {7}state UPDATING_STAGING -> UPDATING_HANDOFF/);
  assert.match(out, /updater journal: outcome: committed/);
  assert.match(out, /ok {2}outpost status: B 1\.1\.0 is IDLE as pid \d+, the process the updater started/);
  assert.match(out, /ok {2}install\/ is B's release byte for byte/);
  assert.match(out, /the server stored B's report EVT_UPDATE_SUCCEEDED/);
  assert.match(out, /From the publish of 1\.1\.0 to 1\.1\.0 healthy and committed: \d+\.\d\d s/);
  for (const phase of ['publish', 'push heard', 'check', 'download', 'verify', 'stage', 'hand-off', 'wait_old_exit', 'backup', 'swap', 'launch', 'health', 'commit', 'total']) {
    assert.match(out, new RegExp(`^ {2}${phase} +\\d+\\b`, 'm'), `the phase table has ${phase}`);
  }
  if (process.platform === 'linux' && process.arch === 'x64') assert.match(out, /the updater ran as the single executable/);
});
