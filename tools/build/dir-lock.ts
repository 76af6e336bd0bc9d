import fs from 'node:fs';
import path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';

/**
 * A lock between processes on one machine: a folder made atomically, holding its owner's pid. One
 * whose owner has died is taken over. Resolves with the function that releases it; rejects after
 * `timeoutMs` with a sentence naming the folder and its holder.
 */
export async function acquireDirLock(dir: string, timeoutMs: number): Promise<() => void> {
  const deadline = Date.now() + timeoutMs;
  fs.mkdirSync(path.dirname(dir), { recursive: true });
  for (;;) {
    try {
      fs.mkdirSync(dir);
      fs.writeFileSync(path.join(dir, 'pid'), String(process.pid));
      return () => fs.rmSync(dir, { recursive: true, force: true });
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code !== 'EEXIST') throw error;
    }
    // Empty for a moment after the holder made the folder: read as no holder, which is never taken over.
    const holder = Number(fs.readFileSync(path.join(dir, 'pid'), { encoding: 'utf8', flag: 'a+' }) || 0);
    if (holder > 0 && !alive(holder)) fs.rmSync(dir, { recursive: true, force: true });
    if (Date.now() > deadline) throw new Error(`the lock ${dir} is still held by pid ${holder} after ${Math.round(timeoutMs / 60_000)} minutes: remove it if that process is not at work`);
    await sleep(250);
  }
}

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (error) {
    return (error as NodeJS.ErrnoException).code === 'EPERM';
  }
}
