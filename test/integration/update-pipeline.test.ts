/**
 * The update pipeline against the real reference server, on its own (no agent process): what one
 * check does when the agent's state machine refuses its next state.
 */
import assert from 'node:assert/strict';
import fs from 'node:fs';
import { test } from 'node:test';
import axios from 'axios';
import { storagePaths } from '../../app/base/storage-layout.js';
import { DEFAULT_CONFIG } from '../../app/main/core/config-schema.js';
import { StateMachine } from '../../app/main/core/state-machine.js';
import { PipelineStopped, UpdatePipeline } from '../../app/main/core/update/update-pipeline.js';
import { memoryLogger } from '../helpers/memory-logger.js';
import { tempDir } from '../helpers/paths.js';
import { ReleaseLab } from '../helpers/release-lab.js';

test('a shutdown that begins during a check: the next state is refused and the check stops there (nothing downloaded, nothing staged)', async (t) => {
  const lab = new ReleaseLab(t);
  await lab.startServer();
  const install = lab.app('1.0.0', { 'main.js': 'v1' });
  lab.publish(install, '1.0.0');
  lab.publish(lab.app('1.1.0', { 'main.js': 'v2', 'big.bin': Buffer.alloc(256 * 1024, 1) }), '1.1.0');
  const updates = storagePaths(tempDir(t)).updates;
  fs.mkdirSync(updates.dir, { recursive: true });
  const log = memoryLogger();
  const state = new StateMachine(log, () => new Date());
  state.setState('IDLE', 'test');
  state.setState('CHECKING_UPDATE', 'test');
  const pipeline = new UpdatePipeline({
    state,
    log,
    updates,
    settings: DEFAULT_CONFIG.update,
    feed: lab.agentFeed({ cacheDir: updates.metadata }),
    running: '1.0.0',
    installDir: install,
    agentId: '00000000-0000-4000-8000-000000000000',
    http: axios.create(),
    now: () => new Date(),
    signal: new AbortController().signal, // never aborted: only the refused state may stop the check
  });

  const checking = pipeline.check();
  state.setState('SHUTTING_DOWN', 'a signal, while the feed is read');
  await assert.rejects(checking, (error) => error instanceof PipelineStopped && /stopped before UPDATING_DOWNLOADING: the agent is SHUTTING_DOWN/.test(error.message));
  assert.equal(pipeline.status.offered, '1.1.0', 'the check got as far as the decision');
  assert.deepEqual(fs.existsSync(updates.chunks) ? fs.readdirSync(updates.chunks) : [], [], 'nothing downloaded');
  assert.equal(fs.existsSync(updates.stagedTree('1.1.0')), false, 'nothing staged');
  assert.equal(state.state, 'SHUTTING_DOWN');
  assert.ok(!log.lines.some((l) => l.includes('staged complete')));
});
