/**
 * The update pipeline against the real reference server, on its own (no agent process): what one
 * check does when the agent's state machine refuses its next state.
 */
import assert from 'node:assert/strict';
import fs from 'node:fs';
import { test } from 'node:test';
import { storagePaths } from '../../app/base/storage-layout.js';
import { PipelineStopped } from '../../app/main/core/update/update-pipeline.js';
import { tempDir } from '../helpers/paths.js';
import { ReleaseLab } from '../helpers/release-lab.js';

test('a shutdown that begins during a check: the next state is refused and the check stops there (nothing downloaded, nothing staged)', async (t) => {
  const lab = new ReleaseLab(t);
  await lab.startServer();
  const install = lab.app('1.0.0', { 'main.js': 'v1' });
  lab.publish(install, '1.0.0');
  lab.publish(lab.app('1.1.0', { 'main.js': 'v2', 'big.bin': Buffer.alloc(256 * 1024, 1) }), '1.1.0');
  const updates = storagePaths(tempDir(t)).updates;
  const { pipeline, state, log } = lab.pipeline({ updates, installDir: install, running: '1.0.0' });

  const checking = pipeline.check();
  state.setState('SHUTTING_DOWN', 'a signal, while the feed is read');
  await assert.rejects(checking, (error) => error instanceof PipelineStopped && /stopped before UPDATING_DOWNLOADING: the agent is SHUTTING_DOWN/.test(error.message));
  assert.equal(pipeline.status.offered, '1.1.0', 'the check got as far as the decision');
  assert.deepEqual(fs.existsSync(updates.chunks) ? fs.readdirSync(updates.chunks) : [], [], 'nothing downloaded');
  assert.equal(fs.existsSync(updates.stagedTree('1.1.0')), false, 'nothing staged');
  assert.equal(state.state, 'SHUTTING_DOWN');
  assert.ok(!log.lines.some((l) => l.includes('staged complete')));
});
