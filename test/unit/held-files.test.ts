/**
 * Held files: the Restart Manager's call specifications and RM_PROCESS_INFO decoding, the exclusive-open
 * probe's decisions and the Windows walk (with stand-in probes: Linux has no sharing modes), and the
 * POSIX backends' answer. test/wine/held-files.test.ts runs the real thing under Wine.
 */
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { test } from 'node:test';
import { isOutpostError } from '../../app/base/errors.js';
import { createPlatform } from '../../app/main/platform/index.js';
import type { FileHolder } from '../../app/main/platform/platform.js';
import { findHeldFilesWin32, isHeldOpen, PROBE_FLAGS, UV_FS_O_EXLOCK } from '../../app/main/platform/win32-held-files.js';
import { WIN32_CALLS } from '../../app/main/platform/win32-native.js';
import {
  decodeProcessInfo,
  pointerTable,
  processesHolding,
  RESTART_MANAGER_CALLS,
  RM_PROCESS_INFO,
  registerFilesArgs,
  startSessionArgs,
} from '../../app/main/platform/win32-restart-manager.js';
import { tempDir } from '../helpers/paths.js';

/** One RM_PROCESS_INFO as Windows lays it out (see the offsets in win32-restart-manager.ts). */
function processInfo(pid: number, appName: string, serviceShortName = ''): Buffer {
  const entry = Buffer.alloc(668);
  entry.writeUInt32LE(pid, 0);
  entry.writeBigUInt64LE(0x01dc_0000_1234_5678n, 4); // ProcessStartTime
  entry.write(appName, 12, 512, 'utf16le');
  entry.write(serviceShortName, 524, 128, 'utf16le');
  entry.writeUInt32LE(5, 652); // RmConsole
  entry.writeUInt32LE(1, 656); // RmStatusRunning
  entry.writeUInt32LE(1, 660); // TSSessionId
  entry.writeInt32LE(1, 664); // bRestartable
  return entry;
}

test('Restart Manager calls have the documented signatures (Wine stubs them: checked on any OS)', () => {
  assert.deepEqual(RESTART_MANAGER_CALLS, {
    RmStartSession: { dll: 'rstrtmgr.dll', ret: 'U32', params: ['U8Array', 'U32', 'U8Array'] },
    RmRegisterResources: { dll: 'rstrtmgr.dll', ret: 'U32', params: ['U32', 'U32', 'U8Array', 'U32', 'I64', 'U32', 'I64'] },
    RmGetList: { dll: 'rstrtmgr.dll', ret: 'U32', params: ['U32', 'U8Array', 'U8Array', 'U8Array', 'U8Array'] },
    RmEndSession: { dll: 'rstrtmgr.dll', ret: 'U32', params: ['U32'] },
  });
  // The Restart Manager is loaded from the system folder by full path (it is not a KnownDLL).
  assert.deepEqual(WIN32_CALLS.GetSystemDirectoryW, { dll: 'kernel32.dll', ret: 'U32', params: ['U8Array', 'U32'] });
  const [handle, flags, key] = startSessionArgs();
  assert.equal(handle.length, 4); // DWORD
  assert.equal(flags, 0); // reserved
  assert.equal(key.length, 66); // WCHAR[CCH_RM_SESSION_KEY + 1]
  const names = pointerTable([0x0000_7ff6_1234_5678n, 0x10n]);
  assert.deepEqual(names, Buffer.from('78563412f67f00001000000000000000', 'hex')); // two little-endian 64-bit pointers
  assert.deepEqual(registerFilesArgs(7, 2, names), [7, 2, names, 0, 0, 0, 0]); // no applications, no services: NULLs
});

test('RM_PROCESS_INFO: 668 bytes; the service short name names a service, the application name anything else', () => {
  assert.equal(RM_PROCESS_INFO.size, 668);
  const buffer = Buffer.concat([
    processInfo(4242, 'Windows Explorer'),
    processInfo(900, 'Host Process for Windows Services', 'WSearch'),
    processInfo(0xffff_fffe, 'MsMpEng.exe', 'WinDefend'),
    processInfo(77, 'not counted'),
  ]);
  assert.deepEqual(decodeProcessInfo(buffer, 3), [
    { pid: 4242, name: 'Windows Explorer' },
    { pid: 900, name: 'WSearch' },
    { pid: 0xffff_fffe, name: 'WinDefend' },
  ]);
  // Names that fill their field to the last WCHAR have no NUL; the field's end stops them (the next
  // field, ApplicationType = 5, is not a NUL).
  const full = Buffer.concat([processInfo(5, 'a'.repeat(256)), processInfo(6, 'app', 's'.repeat(64))]);
  assert.deepEqual(decodeProcessInfo(full, 2), [
    { pid: 5, name: 'a'.repeat(256) },
    { pid: 6, name: 's'.repeat(64) },
  ]);
  assert.deepEqual(decodeProcessInfo(Buffer.alloc(668), 0), []);
  assert.deepEqual(decodeProcessInfo(Buffer.alloc(668), 1), [{ pid: 0, name: '' }]);
  assert.throws(() => decodeProcessInfo(buffer, 5), RangeError);
});

test('the held-file probe: exclusive with write access first (a loaded image refuses only that), read-only after an access error', () => {
  assert.equal(UV_FS_O_EXLOCK, 0x1000_0000); // libuv include/uv/win.h
  assert.deepEqual(PROBE_FLAGS, [fs.constants.O_RDWR | 0x1000_0000, fs.constants.O_RDONLY | 0x1000_0000]);
  const probe = (...outcomes: (string | null)[]) => {
    const flags: number[] = [];
    const held = isHeldOpen('C:\\app\\a.dll', (_file, openFlags) => {
      flags.push(openFlags);
      const code = outcomes[flags.length - 1];
      if (code) throw Object.assign(new Error(code), { code });
    });
    return { held, flags };
  };
  assert.deepEqual(probe(null), { held: false, flags: [PROBE_FLAGS[0]] });
  assert.deepEqual(probe('EBUSY'), { held: true, flags: [PROBE_FLAGS[0]] });
  assert.deepEqual(probe('EPERM', 'EBUSY'), { held: true, flags: [...PROBE_FLAGS] });
  assert.deepEqual(probe('EACCES', null), { held: false, flags: [...PROBE_FLAGS] });
  assert.deepEqual(probe('EPERM', 'EPERM'), { held: false, flags: [...PROBE_FLAGS] });
  assert.deepEqual(probe('ENOENT'), { held: false, flags: [PROBE_FLAGS[0]] });
});

/** A fresh folder holding these files (relative paths), each containing its own name. */
function tree(t: Parameters<typeof tempDir>[0], files: readonly string[]): string {
  const root = tempDir(t, 'outpost-held-');
  for (const file of files) {
    fs.mkdirSync(path.dirname(path.join(root, file)), { recursive: true });
    fs.writeFileSync(path.join(root, file), file);
  }
  return root;
}

test('Windows walk: every file below, links not followed; up to 5 held files each get a session of their own', (t) => {
  const root = tree(t, ['a.txt', 'free.txt', 'sub/deep/b.dll', 'sub/free.txt']);
  const outside = tree(t, ['outside.txt']);
  fs.symlinkSync(outside, path.join(root, 'linked-dir'));
  fs.symlinkSync(path.join(outside, 'outside.txt'), path.join(root, 'linked-file.txt'));
  const probed: string[] = [];
  const asked: string[][] = [];
  const heldNames = new Set(['a.txt', 'b.dll', 'outside.txt', 'linked-file.txt']);
  const found = findHeldFilesWin32(root, undefined, {
    isHeld: (file) => {
      probed.push(path.relative(root, file));
      return heldNames.has(path.basename(file));
    },
    holdersOf: (files) => {
      asked.push([...files]);
      return [{ pid: 100 + asked.length, name: path.basename(files[0] ?? '') }];
    },
  });
  assert.deepEqual(probed.sort(), ['a.txt', 'free.txt', path.join('sub', 'deep', 'b.dll'), path.join('sub', 'free.txt')]);
  const byPath = new Map(found.map((held) => [held.path, held.holders]));
  assert.deepEqual([...byPath.keys()].sort(), [path.join(root, 'a.txt'), path.join(root, 'sub', 'deep', 'b.dll')]);
  assert.deepEqual(asked.map((files) => files.length), [1, 1], 'one session per file');
  assert.equal(byPath.get(path.join(root, 'a.txt'))?.[0]?.name, 'a.txt');
  assert.equal(byPath.get(path.join(root, 'sub', 'deep', 'b.dll'))?.[0]?.name, 'b.dll');
});

test('Windows walk: more than 5 held files share one session and its list; the limit stops the probing', (t) => {
  const names = ['1', '2', '3', '4', '5', '6', '7'].map((n) => `f${n}.txt`);
  const root = tree(t, names);
  const asked: (readonly string[])[] = [];
  const everyone: FileHolder[] = [
    { pid: 1, name: 'MsMpEng.exe' },
    { pid: 2, name: 'explorer.exe' },
  ];
  const holdersOf = (files: readonly string[]) => {
    asked.push(files);
    return everyone;
  };
  const all = findHeldFilesWin32(root, 20, { isHeld: () => true, holdersOf });
  assert.equal(all.length, 7);
  assert.deepEqual(asked.map((files) => [...files].sort()), [names.map((name) => path.join(root, name)).sort()]);
  for (const held of all) assert.deepEqual(held.holders, everyone);

  let probes = 0;
  const isHeld = () => {
    probes++;
    return true;
  };
  const limited = findHeldFilesWin32(root, 3, { isHeld, holdersOf: () => [] });
  assert.equal(limited.length, 3);
  assert.equal(probes, 3, 'no file is probed once the limit is reached');
  assert.deepEqual(findHeldFilesWin32(root, 0, { isHeld: () => true, holdersOf: () => [] }), []);
});

test('Windows walk: a Restart Manager that fails leaves the files reported with no holders and says why; a missing folder holds nothing', (t) => {
  const root = tree(t, ['a.txt', 'b.txt']);
  // The real Restart Manager path: on Linux, loading ffi-rs for Windows calls fails (ERR_PLATFORM_CALL).
  assert.throws(() => processesHolding([path.join(root, 'a.txt')]), (error) => isOutpostError(error, 'ERR_PLATFORM_CALL'));
  const found = findHeldFilesWin32(root, undefined, { isHeld: (file) => file.endsWith('a.txt') });
  assert.equal(found.length, 1);
  assert.equal(found[0]?.path, path.join(root, 'a.txt'));
  assert.deepEqual(found[0]?.holders, []);
  assert.match(found[0]?.unasked ?? '', /Win32 calls are only available on Windows/, 'why the holder could not be asked');
  const many = tree(t, ['1', '2', '3', '4', '5', '6']);
  const failing = () => {
    throw new Error('RmGetList failed');
  };
  const all = findHeldFilesWin32(many, undefined, { isHeld: () => true, holdersOf: failing });
  assert.equal(all.length, 6);
  for (const held of all) assert.deepEqual([held.holders, held.unasked], [[], 'RmGetList failed']);
  assert.deepEqual(findHeldFilesWin32(path.join(root, 'missing'), undefined, { isHeld: () => true }), []);
});

test('Linux and macOS report no held files, even one this process holds open: open files never block a POSIX rename', (t) => {
  const root = tree(t, ['held.txt', 'sub/also.txt']);
  const fds = [fs.openSync(path.join(root, 'held.txt'), 'r+'), fs.openSync(path.join(root, 'sub', 'also.txt'), 'r')];
  t.after(() => {
    for (const fd of fds) fs.closeSync(fd);
  });
  assert.deepEqual(createPlatform('linux').findHeldFiles(root), []);
  assert.deepEqual(createPlatform('darwin').findHeldFiles(root, 1), []);
  // ... and indeed the folder moves while the files are open.
  fs.renameSync(root, `${root}-moved`);
  fs.renameSync(`${root}-moved`, root);
});
