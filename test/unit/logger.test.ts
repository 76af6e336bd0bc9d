import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { test } from 'node:test';
import { createFileLogger } from '../../app/base/logger.js';
import { tempDir } from '../helpers/paths.js';

test('the log rotates by size and keeps the configured number of files', (t) => {
  const dir = tempDir(t);
  const log = createFileLogger({ dir, level: 'info', stderrLevel: false, maxSizeBytes: 2_000, keepFiles: 2 });
  for (let i = 0; i < 200; i++) log.info(`line ${i} ${'x'.repeat(40)}`);
  assert.deepEqual(fs.readdirSync(dir).sort(), ['outpost.1.log', 'outpost.2.log', 'outpost.log']);
  for (const name of fs.readdirSync(dir)) assert.ok(fs.statSync(path.join(dir, name)).size <= 2_200, name);
  assert.match(fs.readFileSync(path.join(dir, 'outpost.log'), 'utf8'), /line 199 /);
});

test('lines carry an ISO 8601 time, the level, the scope and the fields; the level filters', (t) => {
  const dir = tempDir(t);
  const log = createFileLogger({ dir, level: 'info', stderrLevel: false });
  log.child('lock').info('acquired', { pid: 42, file: 'a b' });
  log.debug('hidden');
  log.setLevel('debug');
  log.debug('shown');
  const text = fs.readFileSync(path.join(dir, 'outpost.log'), 'utf8');
  assert.match(text, /^\[\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z\] \[info\] \[lock\] acquired pid=42 file="a b"$/m);
  assert.doesNotMatch(text, /hidden/);
  assert.match(text, /\[debug\] shown/);
});
