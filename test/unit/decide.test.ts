import assert from 'node:assert/strict';
import { test } from 'node:test';
import type { ChannelPointer } from '../../app/common/release.js';
import { decide, rolloutBucket } from '../../app/main/core/update/decide.js';

const pointer = (version: string, extra: Partial<ChannelPointer> = {}): ChannelPointer => ({ channel: 'stable', version, rollout_percent: 100, min_version: null, manifest: { sha256: '0'.repeat(64), length: 1 }, ...extra });
const base = { running: '1.2.0', agentId: 'agent-a', allowDowngrade: false };

test('decide: newer is taken, the same is nothing to do, older is refused unless policy allows it', () => {
  assert.deepEqual(decide({ ...base, pointer: pointer('1.3.0') }), { take: true, version: '1.3.0' });
  assert.equal(decide({ ...base, pointer: pointer('1.2.0') }).take, false);
  const older = decide({ ...base, pointer: pointer('1.1.9') });
  assert.equal(older.take, false);
  assert.equal(!older.take && older.refused, true, 'an older offer is refused (and reported), not silently skipped');
  assert.deepEqual(decide({ ...base, allowDowngrade: true, pointer: pointer('1.1.9') }), { take: true, version: '1.1.9' });
  // Pre-releases order below their release (semver), so 1.3.0-beta.1 is newer than 1.2.0.
  assert.equal(decide({ ...base, pointer: pointer('1.3.0-beta.1') }).take, true);
});

test('decide: a release with a minimum version is not taken from below it', () => {
  const result = decide({ ...base, pointer: pointer('2.0.0', { min_version: '1.5.0' }) });
  assert.equal(result.take, false);
  assert.match(!result.take ? result.reason : '', /needs 1\.5\.0 or later installed first/);
  assert.equal(decide({ ...base, running: '1.5.0', pointer: pointer('2.0.0', { min_version: '1.5.0' }) }).take, true);
});

test('staged rollout: stable per agent and version, close to the percentage over a fleet, and widening only adds agents', () => {
  assert.equal(rolloutBucket('agent-a', '1.3.0'), rolloutBucket('agent-a', '1.3.0'));
  const fleet = Array.from({ length: 10_000 }, (_, i) => `agent-${i}`);
  const inAt = (percent: number) => new Set(fleet.filter((id) => decide({ ...base, agentId: id, pointer: pointer('1.3.0', { rollout_percent: percent }) }).take));
  const ten = inAt(10);
  const twenty = inAt(20);
  assert.ok(ten.size > 800 && ten.size < 1_200, `10% took ${ten.size} of 10,000`);
  assert.ok(twenty.size > 1_800 && twenty.size < 2_200, `20% took ${twenty.size} of 10,000`);
  for (const id of ten) assert.ok(twenty.has(id), 'an agent in the first 10% stays in at 20%');
  assert.equal(inAt(0).size, 0);
  assert.equal(inAt(100).size, fleet.length);
  // Another release starts with another part of the fleet.
  const nextTen = new Set(fleet.filter((id) => rolloutBucket(id, '1.4.0') < 10));
  const overlap = [...ten].filter((id) => nextTen.has(id)).length;
  assert.ok(overlap < ten.size / 3, `the next release's first 10% is mostly other agents (overlap ${overlap})`);
});
