/**
 * The installer tests share one Wine prefix, and with it what an installation registers machine- or
 * user-wide under fixed names (the Run value `Outpost`, the Uninstall entries, the Start menu
 * folder): a test file holds this lock while it installs, so that two files run at once do not
 * overwrite each other's entries. A lock whose holder died is taken over.
 */
import path from 'node:path';
import type { TestContext } from 'node:test';
import { acquireDirLock } from '../../tools/build/dir-lock.js';
import type { Wine } from './harness.js';

/** Waits (up to 20 minutes) for the lock, and releases it when `t` ends. */
export async function holdInstallerLock(t: TestContext, wine: Wine): Promise<void> {
  const release = await acquireDirLock(path.join(wine.repoRoot, '.cache', 'wine', 'installer.lock'), 20 * 60_000);
  t.after(release);
}
