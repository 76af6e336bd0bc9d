import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { test } from 'node:test';
import { chunkBuffer, chunkFile, decodeIndex, decodePage, encodeIndex, encodePage, pageId, splitPages } from '../../app/base/chunking.js';
import type { Chunking } from '../../app/common/release.js';
import { DEFAULT_CHUNKING } from '../../tools/release/release-writer.js';
import { tempDir } from '../helpers/paths.js';
import { seededBytes } from '../helpers/seeded-bytes.js';

const C = DEFAULT_CHUNKING;

function concat(data: Buffer, chunks: ReadonlyArray<{ offset: number; size: number }>): Buffer {
  return Buffer.concat(chunks.map((c) => data.subarray(c.offset, c.offset + c.size)));
}

const SIZES: ReadonlyArray<[string, Buffer]> = [
  ['an empty file', Buffer.alloc(0)],
  ['one byte', Buffer.from('x')],
  ['a file smaller than the minimum chunk', seededBytes('small', C.min - 1)],
  ['a file of exactly the minimum chunk', seededBytes('min', C.min)],
  ['a file of exactly the maximum chunk', seededBytes('max', C.max)],
  ['a file of one byte more than the maximum chunk', seededBytes('max+1', C.max + 1)],
  ['a file of the same byte throughout', Buffer.alloc(5 * C.max + 17)],
  ['a file of 3 MiB of random bytes', seededBytes('big', 3 * 1024 * 1024 + 5)],
];

for (const [name, data] of SIZES) {
  test(`chunking round-trips ${name} byte for byte, from memory and from disk alike, every chunk within its bounds and named by its hash`, async (t) => {
    const chunks = chunkBuffer(data, C);
    assert.ok(concat(data, chunks).equals(data));
    assert.equal(chunks.length === 0, data.length === 0);
    chunks.forEach((chunk, i) => {
      assert.ok(chunk.size <= C.max, `chunk ${i} is ${chunk.size} bytes`);
      if (i < chunks.length - 1) assert.ok(chunk.size >= C.min, `chunk ${i} is ${chunk.size} bytes`);
      assert.equal(chunk.sha256, createHash('sha256').update(data.subarray(chunk.offset, chunk.offset + chunk.size)).digest('hex'));
    });
    const file = path.join(tempDir(t), 'file');
    fs.writeFileSync(file, data);
    const seen: Buffer[] = [];
    const fromDisk = await chunkFile(file, C, (_chunk, chunkBytes) => {
      seen.push(Buffer.from(chunkBytes));
    });
    assert.deepEqual(fromDisk.chunks, chunks);
    assert.equal(fromDisk.sha256, createHash('sha256').update(data).digest('hex'));
    assert.equal(fromDisk.size, data.length);
    assert.ok(Buffer.concat(seen).equals(data), 'each chunk is handed over with its bytes');
  });
}

test('a file of exactly the maximum chunk that holds no cut point is one chunk, named by the file hash (the feed stores such a file without an index)', () => {
  const data = Buffer.alloc(C.max, 0xab);
  const chunks = chunkBuffer(data, C);
  assert.equal(chunks.length, 1);
  assert.equal(chunks[0]?.sha256, createHash('sha256').update(data).digest('hex'));
});

test('content-defined: bytes inserted near the start change the chunks around them and move no chunk after', () => {
  const original = seededBytes('insert', 2 * 1024 * 1024);
  const edited = Buffer.concat([original.subarray(0, 100_000), Buffer.from('a few inserted bytes'), original.subarray(100_000)]);
  const before = chunkBuffer(original, C).map((c) => c.sha256);
  const after = chunkBuffer(edited, C).map((c) => c.sha256);
  const kept = new Set(before);
  const changed = after.filter((sha) => !kept.has(sha));
  assert.ok(changed.length <= 2, `${changed.length} chunks changed`);
  assert.deepEqual(after.slice(-(before.length - 10)), before.slice(-(before.length - 10)), 'every chunk well after the insertion is the same');
});

test('pages: content-defined too (a change in one place changes at most two pages of a 20 MiB file), and encoded pages and indexes decode to what was encoded', () => {
  const original = seededBytes('pages', 20 * 1024 * 1024);
  const edited = Buffer.from(original);
  edited.write('changed in one place', 9 * 1024 * 1024);
  const pagesBefore = splitPages(chunkBuffer(original, C), C);
  const pagesAfter = splitPages(chunkBuffer(edited, C), C);
  assert.ok(pagesBefore.length > 5, `${pagesBefore.length} pages`);
  const ids = new Set(pagesBefore.map((p) => p.id));
  assert.ok(pagesAfter.filter((p) => !ids.has(p.id)).length <= 2);
  for (const page of pagesBefore) {
    assert.ok(page.chunks.length <= C.page_max);
    assert.equal(pageId(page.chunks.map(({ sha256, size }) => ({ sha256, size }))), page.id, 'a page id depends on its chunks hashes and sizes alone');
    const framed = page.chunks.map(({ sha256, size }, i) => ({ sha256, size, stored: 100 + i }));
    assert.deepEqual(decodePage(encodePage(framed), C), framed);
  }
  const index = pagesBefore.map((p, i) => ({ id: p.id, page: createHash('sha256').update(p.id).digest('hex'), stored: 1000 + i }));
  assert.deepEqual(decodeIndex(encodeIndex(index)), index);
});

test('pages and indexes that are not one are refused with the reason, never half read', () => {
  const small: Chunking = { ...C, page_max: 2 };
  const entry = (size: number, stored = 1) => encodePage([{ sha256: 'ab'.repeat(32), size, stored }]);
  assert.match(decodePage(Buffer.alloc(0), C) as string, /0 bytes is not a whole number of entries/);
  assert.match(decodePage(Buffer.alloc(41), C) as string, /41 bytes is not a whole number of entries/);
  assert.match(decodePage(Buffer.concat([entry(1), entry(1), entry(1)]), small) as string, /3 chunks, more than a page holds \(2\)/);
  assert.match(decodePage(entry(0), C) as string, /a chunk of 0 bytes/);
  assert.match(decodePage(entry(C.max + 1), C) as string, new RegExp(`a chunk of ${C.max + 1} bytes \\(at most ${C.max}\\)`));
  assert.match(decodePage(entry(100, 0), C) as string, /a frame of 0 bytes for a chunk of 100/);
  assert.match(decodePage(entry(100, 100_000), C) as string, /a frame of 100000 bytes for a chunk of 100/);
  assert.match(decodeIndex(Buffer.alloc(67)) as string, /67 bytes is not a whole number of index entries/);
  assert.match(decodeIndex(Buffer.alloc(68)) as string, /a page of no bytes/);
});
