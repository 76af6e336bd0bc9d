import assert from 'node:assert/strict';
import path from 'node:path';
import { test } from 'node:test';
import { DIST } from '../helpers/paths.js';
import { Child } from '../helpers/processes.js';

test('npm run demo: every step passes and it exits 0', async () => {
  const demo = new Child(process.execPath, [path.join(DIST, 'demo', 'demo.js')], { ...process.env, NO_COLOR: '1' });
  const result = await demo.finish(60_000);
  assert.equal(result.code, 0, result.stdout + result.stderr);
  assert.match(result.stdout, /Demo passed/);
  assert.match(result.stdout, /status answers: agent C/);
  assert.match(result.stdout, /agent D \(pid \d+\) took over/);
});
