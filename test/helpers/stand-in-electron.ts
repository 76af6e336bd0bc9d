/**
 * A STAND-IN Electron folder for electron-builder (`npm run dist -- --electron-dist DIR`), since no
 * Electron binary can be downloaded here: `electron.exe` is a Windows Node single executable whose
 * script (test/fixtures/stand-in-electron/main.cts) runs the app's `outpost` entry from
 * `resources/app.asar`, so that an installed package really runs under Wine: the installers stop it,
 * register it, start it, and it updates itself. It carries Electron's fuse sentinel (with the fuses
 * as a stock Electron ships them), so that electron-builder flips the fuses in it and a test reads
 * them back, and it is patched for Wine 8 (V8's VirtualAlloc2 lookup), which a real Electron is not.
 * Built once per script and Node version, and kept in .cache/stand-in-electron/.
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { exists, sha256 } from '../../tools/sea/files.js';
import { checkFuse, inject, makeBlob, postjectVersion } from '../../tools/sea/inject.js';
import { findWindowsNode, linuxBaseNode, requiredNodeVersion } from '../../tools/sea/node-binaries.js';
import { disableVirtualAlloc2Lookup, stripAuthenticode, updatePeChecksum } from '../../tools/sea/pe.js';
import { REPO_ROOT } from './paths.js';

/** Electron's fuse wire (@electron/fuses): the sentinel, the wire's version (1), its length, then one byte per fuse. */
const FUSE_SENTINEL = 'dL7pKGdnNz796PbbjQWNKmHXBZaB9tsX';
/** As a stock Electron 45 ships them: RunAsNode, cookie encryption, NODE_OPTIONS, --inspect, asar integrity, only-from-asar, V8 snapshot, file:// privileges, WASM trap handlers. */
const STOCK_FUSES = '101001110';
const SCRIPT = path.join(REPO_ROOT, 'dist', 'test', 'fixtures', 'stand-in-electron', 'main.cjs');

/** Returns a folder holding `electron.exe`, the stand-in (built, or taken from the cache). */
export async function standInElectron(): Promise<string> {
  const version = requiredNodeVersion(REPO_ROOT);
  const node = linuxBaseNode(REPO_ROOT, version);
  const windows = findWindowsNode(REPO_ROOT, version);
  const script = fs.readFileSync(SCRIPT);
  const key = sha256([sha256(script), sha256(windows.data), postjectVersion(REPO_ROOT).version, STOCK_FUSES].join('\n')).slice(0, 24);
  const dir = path.join(REPO_ROOT, '.cache', 'stand-in-electron', key);
  if (exists(path.join(dir, 'electron.exe'))) return dir;

  const work = fs.mkdtempSync(path.join(os.tmpdir(), 'outpost-stand-in-'));
  try {
    fs.writeFileSync(path.join(work, 'main.cjs'), script);
    await makeBlob(node, work, 'main.cjs');
    const exe = path.join(work, 'electron.exe');
    fs.writeFileSync(exe, stripAuthenticode(windows.data).data);
    await inject(node, postjectVersion(REPO_ROOT).api, exe, path.join(work, 'sea-prep.blob'));
    const data = fs.readFileSync(exe);
    checkFuse(data, exe);
    disableVirtualAlloc2Lookup(data);
    updatePeChecksum(data);
    const fuses = Buffer.concat([Buffer.from(FUSE_SENTINEL, 'latin1'), Buffer.from([1, STOCK_FUSES.length]), Buffer.from(STOCK_FUSES, 'latin1')]);
    fs.writeFileSync(exe, Buffer.concat([data, fuses]));
    // Whole or not at all: another test process may build the same key at the same time.
    fs.mkdirSync(path.dirname(dir), { recursive: true });
    const staged = fs.mkdtempSync(`${dir}.staging-`);
    fs.copyFileSync(exe, path.join(staged, 'electron.exe'));
    try {
      fs.renameSync(staged, dir);
    } catch {
      fs.rmSync(staged, { recursive: true, force: true });
    }
    return dir;
  } finally {
    fs.rmSync(work, { recursive: true, force: true });
  }
}
