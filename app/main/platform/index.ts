import { DarwinPlatform } from './darwin.js';
import { LinuxPlatform } from './linux.js';
import type { Platform } from './platform.js';
import { Win32Platform } from './win32.js';

/** Picks the backend for this OS once, at start; nothing else branches on the OS. */
export function createPlatform(os: NodeJS.Platform = process.platform, env: NodeJS.ProcessEnv = process.env): Platform {
  switch (os) {
    case 'win32':
      return new Win32Platform(env);
    case 'darwin':
      return new DarwinPlatform(env);
    case 'linux':
      return new LinuxPlatform(env);
    default:
      throw new Error(`Outpost does not support ${os}`);
  }
}

export { type CredentialStore, type FileHolder, type HeldFile, type InstalledEntryUpdate, type IpcEndpoint, type Platform, SECRET_SERVICE, type StorageSecurity } from './platform.js';
