import fs from 'node:fs';
import { setTimeout as sleep } from 'node:timers/promises';
import { describeError, errnoCode } from '../app/base/errors.js';
import type { HeldFile } from '../app/main/platform/index.js';
import type { JobContext } from './context.js';

/** What a move needs (the benchmark builds just this). */
export type MoveContext = Pick<JobContext, 'platform' | 'log' | 'heldFileRetryMs'>;

/**
 * Renames `from` to `to` (one operation where the file system allows it); across file systems, copies
 * then removes. A file held open by another process (an antivirus scanner, an Explorer window, a stuck
 * old process) blocks the move on Windows: the platform finds such files before the rename is tried
 * (Wine, unlike Windows, would let the folder move anyway), and the move is retried with backoff for
 * a bounded time, then fails naming the files and, where the OS can tell, the processes holding them.
 */
export async function moveDir(context: MoveContext, from: string, to: string): Promise<void> {
  const deadline = Date.now() + (context.heldFileRetryMs ?? 10_000);
  for (let wait = 50; ; wait = Math.min(wait * 2, 1_000)) {
    const held = context.platform.findHeldFiles(from);
    let failure: string | null = null;
    if (held.length === 0) {
      try {
        fs.renameSync(from, to);
        return;
      } catch (error) {
        const code = errnoCode(error);
        if (code === 'EXDEV') {
          copyThenRemove(from, to);
          return;
        }
        if (!['EBUSY', 'EPERM', 'EACCES'].includes(code ?? '')) throw new Error(`cannot move ${from} to ${to}: ${code ?? describeError(error)}`);
        failure = `${code}: ${describeHeld(context.platform.findHeldFiles(from)) || 'no file in it is held open, so a folder is: a process working in it (a console window) or one that has it open'}`;
      }
    } else {
      failure = describeHeld(held);
    }
    if (Date.now() > deadline) throw new Error(`cannot move ${from} to ${to}: ${failure}`);
    context.log.warn(`${from} cannot move yet (${failure}); retrying in ${wait} ms`);
    await sleep(wait);
  }
}

/** "app.exe (held by Code.exe pid 4242)" for the log and the error report. */
function describeHeld(held: readonly HeldFile[]): string {
  return held
    .map((file) => {
      const holders = file.holders.map((h) => `${h.name} pid ${h.pid}`).join(', ');
      const unknown = file.unasked ? `Restart Manager could not be asked: ${file.unasked}` : 'Restart Manager named none';
      return `${file.path} is held open${holders ? ` by ${holders}` : ` (the holder is unknown: ${unknown})`}`;
    })
    .join('; ');
}

/** The move across file systems; a copy that fails half-way leaves `to` removed and `from` whole. */
function copyThenRemove(from: string, to: string): void {
  try {
    fs.cpSync(from, to, { recursive: true, errorOnExist: true, force: false, verbatimSymlinks: true });
  } catch (error) {
    fs.rmSync(to, { recursive: true, force: true });
    throw new Error(`cannot copy ${from} to ${to} (another file system): ${describeError(error)}`);
  }
  fs.rmSync(from, { recursive: true, force: true });
}
