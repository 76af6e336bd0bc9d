import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { test } from 'node:test';
import { readLiveRecord } from '../../app/base/process-liveness.js';
import { ownerRecordText } from '../../app/base/update-records.js';
import { JobOwner } from '../../app/common/update-files.js';
import { createPlatform } from '../../app/main/platform/index.js';
import { tempDir } from '../helpers/paths.js';

const platform = createPlatform();
const liveOwner = (file: string) => readLiveRecord(file, platform, JobOwner)?.pid ?? null;

test('an owner record (the ready file, the recovery lock) names a live process only if it is the very process that wrote it', (t) => {
  const dir = tempDir(t);
  const file = path.join(dir, 'owner');
  fs.writeFileSync(file, ownerRecordText(platform));
  assert.equal(liveOwner(file), process.pid, 'this process, with its start time');

  // The same pid with another start time: a later process that reused the pid of a dead owner.
  const record = JSON.parse(fs.readFileSync(file, 'utf8')) as { pid: number; start_time: string | null };
  assert.ok(record.start_time, 'Linux tells start times');
  fs.writeFileSync(file, JSON.stringify({ ...record, start_time: `${record.start_time}0` }));
  assert.equal(liveOwner(file), null);

  const dead = spawnSync(process.execPath, ['-e', '0']).pid as number;
  fs.writeFileSync(file, JSON.stringify({ pid: dead, start_time: null }));
  assert.equal(liveOwner(file), null, 'a process that has exited');

  for (const text of ['', 'null', '1234', '{"pid":"1"}', '{"pid":-1}']) {
    fs.writeFileSync(file, text);
    assert.equal(liveOwner(file), null, JSON.stringify(text));
  }
  assert.equal(liveOwner(path.join(dir, 'missing')), null);
});
