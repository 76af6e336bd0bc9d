import type { AutostartStore } from './autostart.js';
import type { OutpostError } from '../../base/errors.js';
import type { ProcessProbe } from '../../base/process-liveness.js';
/**
 * Everything the core needs from the operating system, behind one interface. One backend per OS
 * (win32.ts, linux.ts, darwin.ts), chosen once at start by `createPlatform`; the core never looks at
 * `process.platform` itself.
 */

export interface Platform extends ProcessProbe {
  readonly name: 'win32' | 'linux' | 'darwin';

  /**
   * Whether this process runs with administrative rights: POSIX euid 0; Windows, a token that is a
   * member of BUILTIN\Administrators (under UAC, only an elevated token is).
   */
  isElevated(): boolean;

  /** Where the agent keeps its data by default: per machine when elevated, per user otherwise. */
  defaultStorageDir(elevated: boolean): string;

  /**
   * Creates `dir` if needed and gives it permissions that let no other user in (POSIX 0700; Windows
   * a protected DACL). Throws ERR_STORAGE_UNSAFE when the folder belongs to someone else or others
   * can write to it: files planted there could steer the agent, so it must not run there.
   */
  secureDirectory(dir: string, elevated: boolean): StorageSecurity;

  /** Whether a process with this pid exists now (a zombie counts as gone). */
  isProcessAlive(pid: number): boolean;

  /**
   * An opaque string identifying when the process with this pid started, equal for the same process
   * and different for a later process that reuses the pid; null if there is no such process.
   */
  processStartTime(pid: number): string | null;

  /**
   * Stops a process: POSIX asks it to shut down (SIGTERM) and kills it (SIGKILL) if it is still there
   * after `graceMs`; Windows has no such request for a console-less process, so it is terminated
   * (TerminateProcess) at once. Resolves once it is gone (or was never there).
   */
  stopProcess(pid: number, graceMs: number): Promise<void>;

  /**
   * Where the agent of this storage folder listens for local IPC: a Unix socket inside the folder,
   * or a Windows named pipe whose name is hashed from the folder, so that per-user and per-machine
   * agents (and agents of different OUTPOST_HOMEs) never meet.
   */
  ipcEndpoint(storageRoot: string): IpcEndpoint;

  /** This user's OS credential store (it may not answer: no session bus, no binding for this machine). */
  credentialStore(): CredentialStore;

  /**
   * Files under `dir` that another process holds open so that moving `dir` would fail, with the
   * processes holding them where the OS can tell (at most `limit` files, default 20). Always empty on
   * POSIX, where open files never block a rename. On Windows, with more than 5 held files every file
   * gets the holders of them all (win32-held-files.ts). Never throws: it is a diagnostic.
   */
  findHeldFiles(dir: string, limit?: number): HeldFile[];

  /**
   * Start at login: this user's entry, or every user's when elevated (Windows: the Run value under
   * HKCU or HKLM; Linux: an XDG autostart file; macOS: a LaunchAgent). Both shells and both
   * installers go through it (`outpost --enable-autostart`).
   */
  autostart(elevated: boolean): AutostartStore;

  /**
   * The OS's list of installed programs shows `version` for the installation in `installDir`, after a
   * self-update (the updater, once the new version is committed). Windows: every Uninstall entry (Apps
   * & features), in HKCU and HKLM, whose InstallLocation is that folder, whatever its key name, gets
   * `version` as its DisplayVersion and the folder's size as its EstimatedSize
   * (win32-uninstall-entry.ts). One result per entry found: none for a portable or development
   * installation. null on Linux and macOS, which keep no such list for us. Never throws: a failure is
   * in its result.
   */
  recordInstalledVersion(installDir: string, version: string): InstalledEntryUpdate[] | null;

  /** The command that opens a URL in the user's default browser (`outpost diagnostics --open`). */
  openUrlCommand(url: string): { readonly command: string; readonly args: readonly string[] };
}

export type { AutostartStore } from './autostart.js';

/** An entry of the OS's list of installed programs that names the installation (Platform.recordInstalledVersion). */
export interface InstalledEntryUpdate {
  /** Where it is: `HKCU\Software\Microsoft\Windows\CurrentVersion\Uninstall\Outpost` (a hive's Uninstall key when it could not be read). */
  readonly key: string;
  /** The version it showed (null: none, or it could not be read). */
  readonly from: string | null;
  readonly to: string;
  /** Why it does not show `to` (ERR_INSTALL_ENTRY); null when it does now. */
  readonly error: OutpostError | null;
}

/** A file that another process holds open (Platform.findHeldFiles). */
export interface HeldFile {
  readonly path: string;
  /** Empty when the OS cannot tell (Windows' Restart Manager failed or is a stub, as under Wine). */
  readonly holders: readonly FileHolder[];
  /** Set when the OS could not even be asked (e.g. the Restart Manager binding failed to load): why. */
  readonly unasked?: string;
}

export interface FileHolder {
  readonly pid: number;
  /** Windows: the Restart Manager's strAppName, or the service's short name when the holder is a service. */
  readonly name: string;
}

export interface IpcEndpoint {
  readonly path: string;
  /** A file to remove when a killed agent leaves it behind (Unix sockets), or not (pipes). */
  readonly isFile: boolean;
  /** A short id of the storage folder, also naming the IPC secret in the credential store. */
  readonly scope: string;
}

/** What `secureDirectory` found and did, for the log. */
export interface StorageSecurity {
  readonly created: boolean;
  /** Human-readable description of the permissions now in force. */
  readonly permissions: string;
  /** Changes made to an existing folder (e.g. "mode 0755 -> 0700"), empty if none. */
  readonly tightened: readonly string[];
}

/** A credential store holding strings by account. Implemented by keyring-store.ts; the IPC secret lives there (core/ipc-secret.ts). */
export interface CredentialStore {
  /** For the log: "Secret Service", "Windows Credential Manager", ... */
  readonly name: string;
  /** The stored value, or null if there is none. Throws if the store does not answer. */
  get(account: string): string | null;
  set(account: string, value: string): void;
  /** Whether there was something to delete. */
  delete(account: string): boolean;
}

/** The service name of Outpost's entries in the OS credential store. */
export const SECRET_SERVICE = 'Outpost';
