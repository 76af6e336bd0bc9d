/**
 * The installer tests share one Wine prefix, and with it what an installation registers machine- or
 * user-wide under fixed names (the Run value `Outpost`, the Uninstall entries, the Start menu
 * folder): a test file holds this lock while it installs, so that two files run at once do not
 * overwrite each other's entries. A lock whose holder died is taken over.
 */
import fs from 'node:fs';
import path from 'node:path';
import type { TestContext } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import type { Wine } from './harness.js';

/** Waits (up to 20 minutes) for the lock, and releases it when `t` ends. */
export async function holdInstallerLock(t: TestContext, wine: Wine): Promise<void> {
  const dir = path.join(wine.repoRoot, '.cache', 'wine', 'installer.lock');
  const deadline = Date.now() + 20 * 60_000;
  for (;;) {
    try {
      fs.mkdirSync(dir);
      fs.writeFileSync(path.join(dir, 'pid'), String(process.pid));
      t.after(() => fs.rmSync(dir, { recursive: true, force: true }));
      return;
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code !== 'EEXIST') throw error;
    }
    const holder = Number(fs.readFileSync(path.join(dir, 'pid'), { encoding: 'utf8', flag: 'a+' }) || 0);
    if (holder > 0 && !alive(holder)) fs.rmSync(dir, { recursive: true, force: true });
    if (Date.now() > deadline) throw new Error(`the installer lock ${dir} is still held by pid ${holder} after 20 minutes`);
    await sleep(500);
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
