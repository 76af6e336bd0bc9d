import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { test } from 'node:test';
import { phasesOf } from '../../app/main/core/diagnostics/agent-diagnostics.js';
import { readLogTail } from '../../app/main/core/diagnostics/log-tail.js';
import { tempDir } from '../helpers/paths.js';

const line = (n: number, level = 'info') => `[2026-12-01T10:00:${String(n % 60).padStart(2, '0')}.000Z] [${level}] line ${n}\n`;

test('the log tail: the last lines first, then only what was appended; a line being written waits for its end', (t) => {
  const file = path.join(tempDir(t), 'outpost.log');
  fs.writeFileSync(file, Array.from({ length: 50 }, (_, n) => line(n)).join(''));
  const first = readLogTail(file, null, { maxBytes: 1 << 20, maxLines: 10 });
  assert.deepEqual(first.lines.map((l) => l.text), Array.from({ length: 10 }, (_, n) => `line ${40 + n}`));
  assert.equal(first.truncated, true, 'forty lines were left out');
  assert.deepEqual(first.lines[0], { at: '2026-12-01T10:00:40.000Z', level: 'info', text: 'line 40' });

  fs.appendFileSync(file, `${line(50, 'warn')}[2026-12-01T10:00:51.000Z] [error] half a li`);
  const next = readLogTail(file, first.cursor, { maxBytes: 1 << 20, maxLines: 10 });
  assert.deepEqual(next.lines.map((l) => [l.level, l.text]), [['warn', 'line 50']], 'the half line is not returned yet');
  assert.equal(next.truncated, false);
  fs.appendFileSync(file, 'ne\n    at frame (file.js:1:1)\n');
  const rest = readLogTail(file, next.cursor, { maxBytes: 1 << 20, maxLines: 10 });
  assert.deepEqual(rest.lines.map((l) => [l.level, l.text]), [['error', 'half a line\n    at frame (file.js:1:1)']], 'a stack frame belongs to its line');
  assert.deepEqual(readLogTail(file, rest.cursor, { maxBytes: 1 << 20, maxLines: 10 }).lines, []);
});

test('the log tail after a rotation starts over in the new file; a burst larger than one read keeps its newest part', (t) => {
  const dir = tempDir(t);
  const file = path.join(dir, 'outpost.log');
  fs.writeFileSync(file, line(1) + line(2));
  const before = readLogTail(file, null, { maxBytes: 1 << 20, maxLines: 100 });
  fs.renameSync(file, path.join(dir, 'outpost.1.log'));
  fs.writeFileSync(file, line(3));
  const after = readLogTail(file, before.cursor, { maxBytes: 1 << 20, maxLines: 100 });
  assert.deepEqual(after.lines.map((l) => l.text), ['line 3']);
  assert.notEqual(after.cursor.file, before.cursor.file);

  fs.appendFileSync(file, Array.from({ length: 1000 }, (_, n) => line(100 + n)).join(''));
  const burst = readLogTail(file, after.cursor, { maxBytes: 4096, maxLines: 100 });
  assert.equal(burst.truncated, true);
  assert.equal(burst.lines.at(-1)?.text, 'line 1099');
  assert.ok(burst.lines.every((l) => /^line \d+$/.test(l.text)), 'no partial line at the cut');
  assert.deepEqual(readLogTail(path.join(dir, 'missing.log'), null, { maxBytes: 10, maxLines: 10 }).lines, []);
});

test('the phases of an update from its journal: durations, a failed step, a step still running', () => {
  const phases = phasesOf([
    { step: 'wait_old_exit', phase: 'begin', at: '2026-12-01T10:00:00.000Z' },
    { step: 'wait_old_exit', phase: 'end', at: '2026-12-01T10:00:01.500Z' },
    { step: 'swap', phase: 'begin', at: '2026-12-01T10:00:01.500Z' },
    { step: 'swap', phase: 'fail', at: '2026-12-01T10:00:02.000Z', detail: { message: 'EBUSY', files: 2 } },
    { step: 'restore', phase: 'begin', at: '2026-12-01T10:00:02.000Z' },
  ]);
  assert.deepEqual(phases, [
    { step: 'wait_old_exit', result: 'ok', began_at: '2026-12-01T10:00:00.000Z', ms: 1500, detail: null },
    { step: 'swap', result: 'failed', began_at: '2026-12-01T10:00:01.500Z', ms: 500, detail: 'message: EBUSY, files: 2' },
    { step: 'restore', result: 'running', began_at: '2026-12-01T10:00:02.000Z', ms: null, detail: null },
  ]);
});
