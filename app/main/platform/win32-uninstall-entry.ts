/**
 * Windows: the installer's entry in Apps & features (an Uninstall key) names the installed version, so
 * after a self-update it must be told the new one (Platform.recordInstalledVersion). The installers
 * write it under HKCU (per user) or HKLM (per machine) with different key names (NSIS `Outpost`, Inno
 * Setup `Outpost_is1`); what identifies our entry whatever its name, and never another installation's,
 * is its InstallLocation: the installation folder.
 *
 * The Uninstall keys are read with `reg export`, not `reg query`: reg.exe prints a query in the OEM code
 * page (measured under Wine: "ü" comes out as byte 0x81), so a folder under a user name with an accent
 * would never match, while an export is a UTF-16 file, exact. The file goes to a folder of its own
 * under this user's temp folder and is removed at once.
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { describeError, ErrorCode, OutpostError } from '../../base/errors.js';
import type { InstalledEntryUpdate } from './platform.js';
import type { RegExe } from './win32-reg.js';

/** Where installers register a program for Apps & features (below HKCU or HKLM, 64-bit view). */
export const UNINSTALL_KEY = 'Software\\Microsoft\\Windows\\CurrentVersion\\Uninstall';

export type Hive = 'HKCU' | 'HKLM';
/** Per user first: the entry a per-user installation wrote, which this process can always update. */
const HIVES: readonly Hive[] = ['HKCU', 'HKLM'];
const HIVE_NAMES: Readonly<Record<Hive, string>> = { HKCU: 'HKEY_CURRENT_USER', HKLM: 'HKEY_LOCAL_MACHINE' };

/** A key of a `reg export` file with its string and DWORD values, by lower-cased name (the registry ignores case). */
export interface ExportedKey {
  readonly path: string;
  readonly values: ReadonlyMap<string, string | number>;
}

/** The values an update looks at, of one entry that names the installation. */
export interface UninstallEntry {
  readonly hive: Hive;
  /** `HKCU\Software\Microsoft\Windows\CurrentVersion\Uninstall\Outpost`. */
  readonly key: string;
  readonly displayVersion: string | null;
  readonly estimatedSize: number | null;
}

/** A `reg export` file's text: UTF-16LE with a byte order mark (what reg.exe writes), or UTF-8. */
export function regFileText(bytes: Buffer): string {
  if (bytes[0] === 0xff && bytes[1] === 0xfe) return bytes.subarray(2).toString('utf16le');
  return bytes.toString('utf8').replace(/^\uFEFF/, '');
}

const QUOTED = '"((?:[^"\\\\]|\\\\.)*)"';
const STRING_VALUE = new RegExp(`^${QUOTED}=${QUOTED}$`);
const DWORD_VALUE = new RegExp(`^${QUOTED}=dword:([0-9a-fA-F]{8})$`);

/**
 * The keys of a `reg export` file (format 5.00), with their REG_SZ and REG_DWORD values. Other types
 * (`hex(...)`, continued over several lines) are left out: no line of theirs starts with a quote and
 * ends as a string or a DWORD does.
 */
export function parseRegExport(text: string): ExportedKey[] {
  const keys: { path: string; values: Map<string, string | number> }[] = [];
  for (const line of text.split(/\r?\n/)) {
    const header = /^\[(.+)\]$/.exec(line);
    if (header?.[1]) {
      keys.push({ path: header[1], values: new Map() });
      continue;
    }
    const key = keys.at(-1);
    if (!key) continue;
    const string = STRING_VALUE.exec(line);
    if (string) {
      key.values.set(regString(string[1] ?? '').toLowerCase(), regString(string[2] ?? ''));
      continue;
    }
    const dword = DWORD_VALUE.exec(line);
    if (dword) key.values.set(regString(dword[1] ?? '').toLowerCase(), Number.parseInt(dword[2] ?? '', 16));
  }
  return keys;
}

/** A quoted string of a .reg file: `\\` and `\"` (Windows), `\n`, `\r` and `\0` too (Wine). */
function regString(quoted: string): string {
  const controls: Readonly<Record<string, string>> = { n: '\n', r: '\r', '0': '\0' };
  return quoted.replace(/\\(.)/g, (_, c: string) => controls[c] ?? c);
}

/** Whether two Windows paths name one folder: case ignored, and a trailing backslash (Inno Setup writes one). */
export function sameFolder(a: string, b: string): boolean {
  const normal = (p: string) => path.win32.normalize(p).replace(/\\+$/, '').toLowerCase();
  return a.trim() !== '' && normal(a) === normal(b);
}

/** The entries of an export of `<hive>\<UNINSTALL_KEY>` (its direct subkeys, whatever their names) whose InstallLocation is `installDir`. */
export function entriesNaming(keys: readonly ExportedKey[], hive: Hive, installDir: string): UninstallEntry[] {
  const parent = `${HIVE_NAMES[hive]}\\${UNINSTALL_KEY}\\`.toLowerCase();
  const found: UninstallEntry[] = [];
  for (const { path: keyPath, values } of keys) {
    const name = keyPath.toLowerCase().startsWith(parent) ? keyPath.slice(parent.length) : '';
    if (name === '' || name.includes('\\')) continue;
    const location = values.get('installlocation');
    if (typeof location !== 'string' || !sameFolder(location, installDir)) continue;
    const version = values.get('displayversion');
    const size = values.get('estimatedsize');
    found.push({ hive, key: `${hive}\\${UNINSTALL_KEY}\\${name}`, displayVersion: typeof version === 'string' ? version : null, estimatedSize: typeof size === 'number' ? size : null });
  }
  return found;
}

export interface EntryUpdateOptions {
  /** The installation's size in KB for EstimatedSize; null leaves EstimatedSize as it is. Asked only when an entry is found. */
  readonly sizeKb: () => number | null;
  /** Asked only when a per-machine entry cannot be written: to say why. */
  readonly elevated: () => boolean;
}

/**
 * Every Uninstall entry, in HKCU then HKLM, whose InstallLocation is `installDir` gets `version` as its
 * DisplayVersion (and the size as its EstimatedSize). One result per entry found, and one per hive that
 * could not be read; never throws.
 */
export function updateUninstallEntries(reg: RegExe, installDir: string, version: string, options: EntryUpdateOptions): InstalledEntryUpdate[] {
  const results: InstalledEntryUpdate[] = [];
  let size: number | null | undefined;
  const sizeKb = () => {
    size ??= options.sizeKb();
    return size;
  };
  for (const hive of HIVES) {
    let entries: UninstallEntry[];
    try {
      entries = entriesNaming(exportUninstallKey(reg, hive), hive, installDir);
    } catch (error) {
      results.push({ key: `${hive}\\${UNINSTALL_KEY}`, from: null, to: version, error: asEntryError(error, `read ${hive}\\${UNINSTALL_KEY}`) });
      continue;
    }
    for (const entry of entries) results.push({ key: entry.key, from: entry.displayVersion, to: version, error: updateEntry(reg, entry, version, sizeKb(), options) });
  }
  return results;
}

/** The hive's Uninstall key and all below it, parsed; none when the hive has no such key (reg.exe's exit 1, and no file). */
function exportUninstallKey(reg: RegExe, hive: Hive): ExportedKey[] {
  const key = `${hive}\\${UNINSTALL_KEY}`;
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'outpost-reg-'));
  try {
    const file = path.join(dir, 'uninstall.reg');
    const result = reg.run(['export', key, file, '/y'], `read ${key}`);
    if (result.status === 1 && !fs.existsSync(file)) return [];
    if (result.status !== 0) throw reg.failed(`read ${key}`, result);
    return parseRegExport(regFileText(fs.readFileSync(file)));
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
}

/** Sets the entry's values unless they are already right; the error, or null. */
function updateEntry(reg: RegExe, entry: UninstallEntry, version: string, sizeKb: number | null, options: EntryUpdateOptions): OutpostError | null {
  const writes: [string, string, string][] = [];
  if (entry.displayVersion !== version) writes.push(['DisplayVersion', 'REG_SZ', version]);
  if (sizeKb !== null && entry.estimatedSize !== sizeKb) writes.push(['EstimatedSize', 'REG_DWORD', String(sizeKb)]);
  for (const [name, type, data] of writes) {
    const what = `set ${entry.key} ${name} to ${data}`;
    try {
      const result = reg.run(['add', entry.key, '/v', name, '/t', type, '/d', data, '/f'], what);
      if (result.status === 0) continue;
      if (entry.hive === 'HKLM' && unelevated(options)) {
        return new OutpostError(
          ErrorCode.INSTALL_ENTRY,
          `Cannot ${what}: it is the entry of a per-machine installation, and this process runs without administrator rights (reg.exe exit ${result.status}: ${(result.stderr || result.stdout).trim()}). Apps & features shows ${entry.displayVersion ?? 'no version'} until the update runs elevated or the installer of ${version} is run as an administrator.`,
          { details: { key: entry.key, exit: result.status } },
        );
      }
      return reg.failed(what, result);
    } catch (error) {
      return asEntryError(error, what);
    }
  }
  return null;
}

/** Whether this process surely runs without administrator rights (when it cannot tell: no). */
function unelevated(options: EntryUpdateOptions): boolean {
  try {
    return !options.elevated();
  } catch {
    return false;
  }
}

function asEntryError(error: unknown, what: string): OutpostError {
  if (error instanceof OutpostError) return error;
  return new OutpostError(ErrorCode.INSTALL_ENTRY, `Cannot ${what}: ${describeError(error)}.`, { cause: error });
}

/** The size of the files under `dir` in KB (rounded up), as installers count EstimatedSize; null if it cannot be walked. */
export function folderSizeKb(dir: string): number | null {
  try {
    let bytes = 0;
    for (const entry of fs.readdirSync(dir, { recursive: true, withFileTypes: true })) {
      if (entry.isFile()) bytes += fs.statSync(path.join(entry.parentPath, entry.name)).size;
    }
    return Math.ceil(bytes / 1024);
  } catch {
    return null;
  }
}
