import { setTimeout as sleep } from 'node:timers/promises';
import type { z } from 'zod';
import type { ProcessIdentity } from '../common/process-identity.js';
import { readRecord } from './durable-file.js';

/** What the OS tells of processes (Platform implements it). */
export interface ProcessProbe {
  /** Whether a process with this pid exists now (a zombie counts as gone). */
  isProcessAlive(pid: number): boolean;
  /** An opaque start time, equal for the same process and different for a later one with its pid; null if none runs. May throw (access denied). */
  processStartTime(pid: number): string | null;
}

/** This process, as it names itself in the files by which it claims something. */
export function identifySelf(probe: ProcessProbe): ProcessIdentity {
  return { pid: process.pid, start_time: startTimeOf(probe, process.pid) };
}

/**
 * - `running`: the process named runs, or one with its pid whose start time cannot be read or
 *   compared (access denied, an OS that cannot tell): it cannot be ruled out;
 * - `gone`: no process has the pid;
 * - `pid_reused`: another process, started at another time, has the pid now.
 */
export type ProcessStatus = 'running' | 'gone' | 'pid_reused';

export function processStatus(identity: ProcessIdentity, probe: ProcessProbe): ProcessStatus {
  if (!probe.isProcessAlive(identity.pid)) return 'gone';
  if (identity.start_time === null) return 'running';
  let now: string | null;
  try {
    now = probe.processStartTime(identity.pid);
  } catch {
    return 'running';
  }
  if (now === null) return 'gone';
  return now === identity.start_time ? 'running' : 'pid_reused';
}

/**
 * The record in `file` (a ProcessIdentity, or a schema extending it) if the process it names still
 * runs; null when the file is missing, unreadable, not such a record, or its process is gone.
 */
export function readLiveRecord<S extends z.ZodType<ProcessIdentity>>(file: string, probe: ProcessProbe, schema: S): z.infer<S> | null {
  const record = readRecord(file, schema);
  return record !== null && processStatus(record, probe) === 'running' ? record : null;
}

/** The start time, or null where the OS cannot tell (Windows without its ffi-rs binding): liveness alone then. */
function startTimeOf(probe: ProcessProbe, pid: number): string | null {
  try {
    return probe.processStartTime(pid);
  } catch {
    return null;
  }
}

/** Waits until the process has gone (a killed one goes within milliseconds); bounded, for one we may not kill. */
export async function waitUntilGone(pid: number, isAlive: (pid: number) => boolean, limitMs = 10_000): Promise<void> {
  const deadline = Date.now() + limitMs;
  while (isAlive(pid) && Date.now() < deadline) await sleep(20);
}
