import assert from 'node:assert/strict';
import { test } from 'node:test';
import { FrameSplitter } from '../../app/main/core/update/frame-splitter.js';

const bytes = (from: number, to: number) => Buffer.from(Array.from({ length: to - from }, (_, i) => (from + i) % 256));

test('frames of known lengths come out whole and in order however the network cut the bytes, none before all its bytes came', () => {
  const all = bytes(0, 1000);
  const lengths = [1, 299, 300, 400];
  for (const reads of [[1000], [1, 999], [150, 150, 150, 150, 400], Array.from({ length: 1000 }, () => 1)]) {
    const frames = new FrameSplitter();
    const out: Buffer[] = [];
    let at = 0;
    let next = 0;
    for (const n of reads) {
      frames.push(all.subarray(at, at + n));
      at += n;
      for (let frame = frames.take(lengths[next] ?? 0); frame; frame = frames.take(lengths[next] ?? 0)) {
        out.push(Buffer.from(frame));
        next++;
        assert.ok(out.reduce((m, f) => m + f.length, 0) <= at, 'never a byte that has not come');
      }
    }
    assert.deepEqual(
      out.map((f) => f.length),
      lengths,
      `reads of ${reads.length}`,
    );
    assert.deepEqual(Buffer.concat(out), all);
    assert.equal(frames.rest().length, 0);
  }
});

test('bytes before the range (a host that ignored it and sent the whole object) are dropped', () => {
  const frames = new FrameSplitter(250);
  frames.push(bytes(0, 100));
  frames.push(bytes(100, 300));
  assert.equal(frames.take(51), undefined, 'only 50 bytes of the range so far');
  frames.push(bytes(300, 400));
  assert.deepEqual(frames.take(51), bytes(250, 301));
  assert.deepEqual(frames.rest(), bytes(301, 400));
});
