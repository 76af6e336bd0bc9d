import { execFileSync } from 'node:child_process';
import os from 'node:os';
import path from 'node:path';
import type { CredentialStore } from './platform.js';
import { keyringStore } from './keyring-store.js';
import type { HeldFile, IpcEndpoint, Platform, StorageSecurity } from './platform.js';
import { posixFindHeldFiles,
  posixStopProcess, posixIpcEndpoint, posixIsElevated, posixIsProcessAlive, posixSecureDirectory } from './posix.js';

export class DarwinPlatform implements Platform {
  readonly name = 'darwin';
  readonly #env: NodeJS.ProcessEnv;

  constructor(env: NodeJS.ProcessEnv) {
    this.#env = env;
  }

  isElevated(): boolean {
    return posixIsElevated();
  }

  defaultStorageDir(elevated: boolean): string {
    if (elevated) return '/Library/Application Support/Outpost';
    return path.join(this.#env.HOME || os.homedir(), 'Library', 'Application Support', 'Outpost');
  }

  secureDirectory(dir: string): StorageSecurity {
    return posixSecureDirectory(dir);
  }

  credentialStore(): CredentialStore {
    return keyringStore('macOS Keychain');
  }

  ipcEndpoint(storageRoot: string): IpcEndpoint {
    return posixIpcEndpoint(storageRoot);
  }

  findHeldFiles(): HeldFile[] {
    return posixFindHeldFiles();
  }

  stopProcess(pid: number, graceMs: number): Promise<void> {
    return posixStopProcess(pid, graceMs, (p) => this.isProcessAlive(p));
  }

  isProcessAlive(pid: number): boolean {
    return posixIsProcessAlive(pid);
  }

  processStartTime(pid: number): string | null {
    // macOS has no /proc; ps reads the kernel's p_starttime (to the second, which is enough with the pid).
    try {
      const started = execFileSync('/bin/ps', ['-o', 'lstart=', '-p', String(pid)], { encoding: 'utf8', env: { LC_ALL: 'C' } }).trim();
      return started ? `darwin:${started}` : null;
    } catch {
      return null;
    }
  }
}
