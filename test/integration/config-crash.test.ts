import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { test } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import { DIST, tempDir } from '../helpers/paths.js';
import { Child } from '../helpers/processes.js';

test('SIGKILL during config writes never leaves a half-written config.json (20 random kills)', async (t) => {
  const dir = tempDir(t);
  const file = path.join(dir, 'config.json');
  let lastN = -1;
  for (let round = 0; round < 20; round++) {
    const writer = new Child(process.execPath, [path.join(DIST, 'test', 'fixtures', 'atomic-writer.js'), file], process.env);
    await writer.waitFor(/writing/);
    await sleep(30 + Math.random() * 120);
    writer.kill('SIGKILL');
    await writer.finish();
    if (!fs.existsSync(file)) {
      // Killed before its first write completed (a loaded machine): no file is also not a half-written one.
      assert.equal(lastN, -1, 'a file, once written, never disappears');
      continue;
    }
    const doc = JSON.parse(fs.readFileSync(file, 'utf8'));
    assert.equal(doc.end, true, 'the document is complete');
    assert.equal(doc.pad.length, 512 * 1024);
    lastN = doc.n;
  }
  assert.ok(lastN >= 0);
  t.diagnostic(`temp files left by the kills (removed at the next config load): ${fs.readdirSync(dir).filter((n) => n.includes('.tmp-')).length}`);
});
