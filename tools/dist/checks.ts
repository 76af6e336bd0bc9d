/**
 * What `npm run dist` checks of its outputs before it calls them done: 64-bit executables, the files
 * an installation needs, the fuses read back, and app.asar matching the integrity hash stamped into
 * the executable (what Electron validates at every start when the fuse is on).
 */
import crypto from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { readFuses } from './fuses.js';

/** What an installation holds besides Electron's own files (paths relative to the app folder). */
export const EXPECTED_FILES = [
  'Outpost.exe',
  'resources/app.asar',
  'resources/updater/outpost-updater.exe',
  'resources/app.asar.unpacked/node_modules/ffi-rs/package.json',
  'resources/app.asar.unpacked/node_modules/@napi-rs/keyring/package.json',
] as const;

/** IMAGE_FILE_MACHINE_AMD64 in the COFF header. */
const MACHINE_X64 = 0x8664;

/** Problems found in the packaged app folder (empty: all good). */
export async function checkPackagedApp(appDir: string, options: { readonly trustRoot: boolean; readonly organisation: boolean }): Promise<string[]> {
  const problems: string[] = [];
  const expected = [...EXPECTED_FILES, ...(options.trustRoot ? ['resources/trust/root.json'] : []), ...(options.organisation ? ['resources/organisation.json'] : [])];
  for (const name of expected) if (!fs.existsSync(path.join(appDir, name))) problems.push(`${name} is missing`);
  for (const name of ['Outpost.exe', 'resources/updater/outpost-updater.exe']) {
    const file = path.join(appDir, name);
    if (fs.existsSync(file) && !isPe64(file)) problems.push(`${name} is not a 64-bit (x64) Windows executable`);
  }
  const exe = path.join(appDir, 'Outpost.exe');
  if (!fs.existsSync(exe)) return problems;
  for (const { fuse, wanted, actual } of await readFuses(exe)) {
    if (actual !== wanted) problems.push(`fuse ${fuse} is ${actual === null ? 'not set' : actual ? 'on' : 'off'} in Outpost.exe, not ${wanted ? 'on' : 'off'}`);
  }
  const integrity = asarIntegrity(fs.readFileSync(exe));
  const asar = path.join(appDir, 'resources', 'app.asar');
  if (integrity === null) problems.push('Outpost.exe carries no integrity hash for resources\\app.asar');
  else if (fs.existsSync(asar) && integrity !== asarHeaderHash(asar)) problems.push(`resources/app.asar does not match the integrity hash in Outpost.exe (${integrity})`);
  return problems;
}

/** An x64 PE32+ executable (the COFF machine and the optional header's magic). */
export function isPe64(file: string): boolean {
  const fd = fs.openSync(file, 'r');
  try {
    const head = Buffer.alloc(4096);
    fs.readSync(fd, head, 0, head.length, 0);
    if (head.toString('latin1', 0, 2) !== 'MZ') return false;
    const pe = head.readUInt32LE(0x3c);
    return pe + 26 <= head.length && head.toString('latin1', pe, pe + 4) === 'PE\0\0' && head.readUInt16LE(pe + 4) === MACHINE_X64 && head.readUInt16LE(pe + 24) === 0x20b;
  } finally {
    fs.closeSync(fd);
  }
}

/** The hash electron-builder stamps into the executable: `[{"file":"resources\\app.asar","alg":"SHA256","value":"<hex>"}]`. */
function asarIntegrity(exe: Buffer): string | null {
  const marker = Buffer.from('{"file":"resources\\\\app.asar","alg":"SHA256","value":"', 'latin1');
  const at = exe.indexOf(marker);
  return at < 0 ? null : exe.toString('latin1', at + marker.length, at + marker.length + 64);
}

/** SHA-256 of the archive's JSON header, which names every file's hash (asar's integrity scheme). */
function asarHeaderHash(asar: string): string {
  const fd = fs.openSync(asar, 'r');
  try {
    const sizes = Buffer.alloc(16);
    fs.readSync(fd, sizes, 0, 16, 0);
    const header = Buffer.alloc(sizes.readUInt32LE(12));
    fs.readSync(fd, header, 0, header.length, 16);
    return crypto.createHash('sha256').update(header).digest('hex');
  } finally {
    fs.closeSync(fd);
  }
}
