/**
 * A publish pushed over a window (outpost-server --push-spread-s): every agent hears it once, not all
 * in the same moment, and a newer publish during a spread replaces the rest of it.
 */
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { test } from 'node:test';
import { tempDir } from '../helpers/paths.js';
import { until } from '../helpers/wait.js';
import { connectMany, publish, startServer, wsUrl } from './helpers.js';

const AGENTS = 60;
const SPREAD_MS = 2_000;

test('a spread push: each of 60 agents hears a publish once, over the window rather than at once; a newer publish mid-spread reaches everyone, and the older one no one after it', async (t) => {
  const root = tempDir(t, 'outpost-push-spread-');
  const feedDir = path.join(root, 'feed');
  fs.mkdirSync(feedDir);
  publish(feedDir, 1);
  const logged: string[] = [];
  const server = await startServer(t, { feedDir, reportsFile: path.join(root, 'reports.jsonl'), pushSpreadMs: SPREAD_MS, log: (line) => logged.push(line) });
  const clients = await connectMany(wsUrl(server), AGENTS);
  t.after(() => {
    for (const client of clients) client.terminate();
  });

  publish(feedDir, 2);
  await until('every agent pushed', () => clients.every((client) => client.messages.length >= 1));
  const receipts = clients.map((client) => Number(client.messages[0]?.at ?? 0n) / 1e6);
  const span = Math.max(...receipts) - Math.min(...receipts);
  // A slow machine only makes the span longer: this cannot pass by accident of speed.
  assert.ok(span >= SPREAD_MS / 2, `receipts spread over ${span.toFixed(0)} ms, not all at once`);
  assert.ok(logged.some((line) => line === `feed version 2 published: pushing to ${AGENTS} agent(s) over 2 s`), logged.join('\n'));

  const before = clients.map((client) => client.messages.length);
  publish(feedDir, 3);
  await until('the first of the newer push', () => clients.some((client, i) => client.messages.length > (before[i] ?? 0)));
  publish(feedDir, 4);
  await until('everyone has version 4', () => clients.every((client) => client.messages.some((m) => JSON.parse(m.text).feed_version === 4)));
  for (const client of clients) {
    const versions = client.messages.map((m) => JSON.parse(m.text).feed_version as number);
    assert.equal(versions.filter((v) => v === 4).length, 1, 'once each');
    assert.deepEqual(versions, [...versions].sort((a, b) => a - b), 'never an older version after a newer one');
  }
  assert.ok(
    clients.some((client) => !client.messages.some((m) => JSON.parse(m.text).feed_version === 3)),
    'the push of version 3 was cut short by version 4 (its remaining agents got 4 instead)',
  );
});
