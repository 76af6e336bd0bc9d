/**
 * What a test reads of a real agent and its storage folder: its log, its status, its lock record, its
 * IPC endpoint and its buffered error reports. Paths come from the product's own locators
 * (storage-layout.ts, the platform's ipcEndpoint), never from names joined here.
 */
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { LOG_FILE_NAME } from '../../app/base/logger.js';
import { storagePaths } from '../../app/base/storage-layout.js';
import { StatusLine } from '../../app/common/cli-output.js';
import { LockRecord } from '../../app/common/process-identity.js';
import { ErrorReport } from '../../app/common/reports.js';
import { createPlatform } from '../../app/main/platform/index.js';
import { type Finished, runOutpost } from './processes.js';

/** The agent's log as it is now. */
export function logOf(home: string): string {
  return fs.readFileSync(path.join(storagePaths(home).logs, LOG_FILE_NAME), 'utf8');
}

/** `outpost status` of an agent that must answer: exit 0 and exactly one JSON line. `install`: its OUTPOST_INSTALL_DIR. */
export async function statusOf(home: string, install?: string, extra: NodeJS.ProcessEnv = {}): Promise<StatusLine> {
  const result = await runStatus(home, install, extra);
  assert.equal(result.code, 0, result.stderr);
  return parseStatus(result);
}

/** `outpost status`, or null while no agent answers it (any exit but 0): for polls. */
export async function statusIfRunning(home: string, install?: string): Promise<StatusLine | null> {
  const result = await runStatus(home, install);
  return result.code === 0 ? parseStatus(result) : null;
}

function runStatus(home: string, install: string | undefined, extra: NodeJS.ProcessEnv = {}): Promise<Finished> {
  return runOutpost(home, ['status'], install === undefined ? extra : { ...extra, OUTPOST_INSTALL_DIR: install });
}

function parseStatus(result: Finished): StatusLine {
  const lines = result.stdout.trim().split('\n');
  assert.equal(lines.length, 1, `status prints exactly one line, got:\n${result.stdout}`);
  return StatusLine.parse(JSON.parse(lines[0] as string));
}

/** The record in `agent.lock` (which must be there, and whole). */
export function lockRecordOf(home: string): LockRecord {
  return LockRecord.parse(JSON.parse(fs.readFileSync(storagePaths(home).lock, 'utf8')));
}

/** The IPC endpoint (a Unix socket here) that the agent of `home` listens on. */
export function ipcSocketOf(home: string): string {
  return createPlatform().ipcEndpoint(home).path;
}

/** The reports in an error-report buffer file (`error_reports.jsonl`), none if it is absent. */
export function bufferedReports(file: string): ErrorReport[] {
  const text = fs.existsSync(file) ? fs.readFileSync(file, 'utf8') : '';
  assert.ok(text === '' || text.endsWith('\n'), 'the buffer ends with a complete line');
  return text
    .split('\n')
    .filter((line) => line !== '')
    .map((line) => ErrorReport.parse(JSON.parse(line)));
}
