import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { test } from 'node:test';
import { ErrorCode, isOutpostError } from '../../app/base/errors.js';
import { createPlatform } from '../../app/main/platform/index.js';
import type { CommandResult, CommandRunner } from '../../app/main/platform/win32.js';
import { regExe } from '../../app/main/platform/win32-reg.js';
import { entriesNaming, folderSizeKb, parseRegExport, regFileText, sameFolder, UNINSTALL_KEY, updateUninstallEntries } from '../../app/main/platform/win32-uninstall-entry.js';
import { tempDir } from '../helpers/paths.js';

const HKCU_UNINSTALL = `HKEY_CURRENT_USER\\${UNINSTALL_KEY}`;
const HKLM_UNINSTALL = `HKEY_LOCAL_MACHINE\\${UNINSTALL_KEY}`;
const INSTALL = 'C:\\Users\\Jürgen\\AppData\\Local\\Programs\\Outpost';

/** A `reg export` file as reg.exe writes it (UTF-16LE, a byte order mark, CRLF). */
function exportFile(lines: readonly string[]): Buffer {
  return Buffer.concat([Buffer.from([0xff, 0xfe]), Buffer.from(['Windows Registry Editor Version 5.00', '', ...lines, '', ''].join('\r\n'), 'utf16le')]);
}

/** The HKCU Uninstall key of a machine: the NSIS entry of this installation among others (Inno Setup's of another folder, a nested key, values of every kind). */
const HKCU_EXPORT = [
  `[${HKCU_UNINSTALL}]`,
  '',
  `[${HKCU_UNINSTALL}\\Outpost]`,
  '"DisplayName"="Outpost"',
  '"DisplayVersion"="1.0.0"',
  `"InstallLocation"="${INSTALL.replaceAll('\\', '\\\\')}"`,
  '"UninstallString"="\\"C:\\\\Users\\\\Jürgen\\\\AppData\\\\Local\\\\Programs\\\\Outpost\\\\uninstall.exe\\""',
  '"EstimatedSize"=dword:0001e240',
  '"NoModify"=dword:00000001',
  '"DisplayIcon"=hex(2):43,00,3a,00,5c,00,4f,00,75,00,74,00,70,00,6f,00,73,00,74,00,\\',
  '  5c,00,00,00',
  '@="default"',
  '',
  `[${HKCU_UNINSTALL}\\Outpost\\Nested]`,
  `"InstallLocation"="${INSTALL.replaceAll('\\', '\\\\')}"`,
  '',
  `[${HKCU_UNINSTALL}\\Outpost_is1]`,
  '"DisplayName"="Outpost"',
  '"DisplayVersion"="0.9.0"',
  '"InstallLocation"="D:\\\\Other\\\\Outpost\\\\"',
  '',
  `[${HKCU_UNINSTALL}\\{5A1B-7-Zip}]`,
  '"DisplayName"="7-Zip 23.01 (x64)"',
  '"InstallLocation"=""',
];

test('reg export: keys with their string and DWORD values, escapes undone, other types and continued lines left out', () => {
  const keys = parseRegExport(regFileText(exportFile(HKCU_EXPORT)));
  assert.deepEqual(
    keys.map((k) => k.path),
    [HKCU_UNINSTALL, `${HKCU_UNINSTALL}\\Outpost`, `${HKCU_UNINSTALL}\\Outpost\\Nested`, `${HKCU_UNINSTALL}\\Outpost_is1`, `${HKCU_UNINSTALL}\\{5A1B-7-Zip}`],
  );
  const outpost = keys[1];
  assert.deepEqual(Object.fromEntries(outpost?.values ?? []), {
    displayname: 'Outpost',
    displayversion: '1.0.0',
    installlocation: INSTALL,
    uninstallstring: '"C:\\Users\\Jürgen\\AppData\\Local\\Programs\\Outpost\\uninstall.exe"',
    estimatedsize: 123_456,
    nomodify: 1,
  });
  assert.equal(keys[4]?.values.get('installlocation'), '');
  // UTF-8 (a hand-written file), and Wine's escapes of control characters.
  assert.deepEqual(Object.fromEntries(parseRegExport(regFileText(Buffer.from(`\uFEFFWindows Registry Editor Version 5.00\n\n[HKEY_CURRENT_USER\\X]\n"A"="line\\nnext"\n`)))[0]?.values ?? []), { a: 'line\nnext' });
});

test('InstallLocation names the folder whatever its case and a trailing backslash; an empty one names nothing', () => {
  assert.ok(sameFolder('C:\\Program Files\\Outpost', 'C:\\Program Files\\Outpost'));
  assert.ok(sameFolder('c:\\program files\\OUTPOST\\', 'C:\\Program Files\\Outpost'), 'Inno Setup writes a trailing backslash');
  assert.ok(sameFolder('C:/Program Files/Outpost', 'C:\\Program Files\\Outpost'));
  assert.ok(sameFolder('C:\\Users\\JÜRGEN\\Outpost', 'C:\\Users\\jürgen\\Outpost'));
  assert.ok(!sameFolder('C:\\Program Files\\Outpost2', 'C:\\Program Files\\Outpost'));
  assert.ok(!sameFolder('C:\\Program Files', 'C:\\Program Files\\Outpost'));
  assert.ok(!sameFolder('', 'C:\\Program Files\\Outpost'));
});

test('the entries of an Uninstall key that name the folder: any key name, direct subkeys only, other folders left alone', () => {
  const keys = parseRegExport(regFileText(exportFile(HKCU_EXPORT)));
  assert.deepEqual(entriesNaming(keys, 'HKCU', INSTALL), [{ hive: 'HKCU', key: `HKCU\\${UNINSTALL_KEY}\\Outpost`, displayVersion: '1.0.0', estimatedSize: 123_456 }]);
  assert.deepEqual(entriesNaming(keys, 'HKCU', 'D:\\Other\\Outpost'), [{ hive: 'HKCU', key: `HKCU\\${UNINSTALL_KEY}\\Outpost_is1`, displayVersion: '0.9.0', estimatedSize: null }]);
  assert.deepEqual(entriesNaming(keys, 'HKLM', INSTALL), [], 'keys of another hive are not this one');
  assert.deepEqual(entriesNaming(keys, 'HKCU', 'C:\\Elsewhere'), []);
});

test('the size of a folder in KB, as EstimatedSize counts it: the files below it, rounded up', (t) => {
  const dir = tempDir(t);
  fs.mkdirSync(path.join(dir, 'a', 'b'), { recursive: true });
  fs.writeFileSync(path.join(dir, 'one'), Buffer.alloc(1000));
  fs.writeFileSync(path.join(dir, 'a', 'b', 'two'), Buffer.alloc(2100));
  assert.equal(folderSizeKb(dir), 4); // 3100 bytes
  assert.equal(folderSizeKb(path.join(dir, 'missing')), null);
});

/**
 * A stand-in for reg.exe (the Windows registry's answers cannot be had on Linux, and Wine runs
 * everything as an administrator): `export` writes the given file like reg.exe, or exits 1 for a
 * missing key; `add` is recorded, and refused for HKLM as Windows refuses an unelevated process.
 */
function fakeReg(exports: Partial<Record<'HKCU' | 'HKLM', readonly string[]>>, refuseHklm: boolean) {
  const adds: string[][] = [];
  const run: CommandRunner = (file, args): CommandResult => {
    assert.equal(file, 'C:\\Windows\\System32\\reg.exe');
    assert.equal(args.at(-1), '/reg:64', 'the 64-bit view, always');
    const [verb, key = '', target = ''] = args;
    if (verb === 'export') {
      const lines = exports[key.slice(0, 4) as 'HKCU' | 'HKLM'];
      if (!lines) return { status: 1, stdout: '', stderr: 'ERROR: The system was unable to find the specified registry key or value.\r\n' };
      fs.writeFileSync(target, exportFile(lines));
      return { status: 0, stdout: 'The operation completed successfully.\r\n', stderr: '' };
    }
    assert.equal(verb, 'add');
    adds.push(args.slice(0, -1));
    if (refuseHklm && key.startsWith('HKLM\\')) return { status: 1, stdout: '', stderr: 'ERROR: Access is denied.\r\n' };
    return { status: 0, stdout: 'The operation completed successfully.\r\n', stderr: '' };
  };
  return { adds, reg: regExe(run, () => 'C:\\Windows\\System32\\reg.exe', ErrorCode.INSTALL_ENTRY) };
}

const HKLM_EXPORT = [`[${HKLM_UNINSTALL}]`, '', `[${HKLM_UNINSTALL}\\Outpost_is1]`, '"DisplayVersion"="1.0.0"', `"InstallLocation"="${INSTALL.replaceAll('\\', '\\\\')}\\\\"`, '"EstimatedSize"=dword:00000400'];

test('after an update: each entry naming the folder, in HKCU and HKLM, gets the version and the size; other entries are not touched', () => {
  const { adds, reg } = fakeReg({ HKCU: HKCU_EXPORT, HKLM: HKLM_EXPORT }, false);
  const updates = updateUninstallEntries(reg, INSTALL, '1.1.0', { sizeKb: () => 2048, elevated: () => true });
  assert.deepEqual(updates, [
    { key: `HKCU\\${UNINSTALL_KEY}\\Outpost`, from: '1.0.0', to: '1.1.0', error: null },
    { key: `HKLM\\${UNINSTALL_KEY}\\Outpost_is1`, from: '1.0.0', to: '1.1.0', error: null },
  ]);
  assert.deepEqual(adds, [
    ['add', `HKCU\\${UNINSTALL_KEY}\\Outpost`, '/v', 'DisplayVersion', '/t', 'REG_SZ', '/d', '1.1.0', '/f'],
    ['add', `HKCU\\${UNINSTALL_KEY}\\Outpost`, '/v', 'EstimatedSize', '/t', 'REG_DWORD', '/d', '2048', '/f'],
    ['add', `HKLM\\${UNINSTALL_KEY}\\Outpost_is1`, '/v', 'DisplayVersion', '/t', 'REG_SZ', '/d', '1.1.0', '/f'],
    ['add', `HKLM\\${UNINSTALL_KEY}\\Outpost_is1`, '/v', 'EstimatedSize', '/t', 'REG_DWORD', '/d', '2048', '/f'],
  ]);
});

test('an entry already right is not written again (a recovery runs it a second time); no Uninstall key, or no entry naming the folder: nothing, and the size is never counted', () => {
  const { adds, reg } = fakeReg({ HKLM: HKLM_EXPORT }, true);
  let counted = 0;
  const sizeKb = () => {
    counted++;
    return 1024;
  };
  assert.deepEqual(updateUninstallEntries(reg, INSTALL, '1.0.0', { sizeKb, elevated: () => false }), [{ key: `HKLM\\${UNINSTALL_KEY}\\Outpost_is1`, from: '1.0.0', to: '1.0.0', error: null }]);
  assert.deepEqual(adds, []);
  assert.deepEqual(updateUninstallEntries(reg, 'C:\\Portable\\Outpost', '1.1.0', { sizeKb, elevated: () => false }), []);
  assert.equal(counted, 1, 'counted once, for the entry found');
});

test('a per-machine entry and an unelevated updater: the warning says so and names the key; the per-user entry is still updated', () => {
  const { reg } = fakeReg({ HKCU: HKCU_EXPORT, HKLM: HKLM_EXPORT }, true);
  const [user, machine, ...more] = updateUninstallEntries(reg, INSTALL, '1.1.0', { sizeKb: () => null, elevated: () => false });
  assert.equal(more.length, 0);
  assert.deepEqual(user, { key: `HKCU\\${UNINSTALL_KEY}\\Outpost`, from: '1.0.0', to: '1.1.0', error: null });
  assert.equal(machine?.key, `HKLM\\${UNINSTALL_KEY}\\Outpost_is1`);
  assert.ok(isOutpostError(machine?.error, ErrorCode.INSTALL_ENTRY));
  assert.equal(
    machine?.error?.message,
    `Cannot set HKLM\\${UNINSTALL_KEY}\\Outpost_is1 DisplayVersion to 1.1.0: it is the entry of a per-machine installation, and this process runs without administrator rights (reg.exe exit 1: ERROR: Access is denied.). Apps & features shows 1.0.0 until the update runs elevated or the installer of 1.1.0 is run as an administrator.`,
  );
  // Elevated, the same refusal is reg.exe's own failure.
  const elevated = updateUninstallEntries(reg, INSTALL, '1.1.0', { sizeKb: () => null, elevated: () => true })[1];
  assert.equal(elevated?.error?.message, `reg.exe could not set HKLM\\${UNINSTALL_KEY}\\Outpost_is1 DisplayVersion to 1.1.0 (exit 1): ERROR: Access is denied.`);
});

test('reg.exe that cannot be run: each hive says so, nothing throws', () => {
  const reg = regExe(() => ({ status: null, stdout: '', stderr: '', error: new Error('spawn reg.exe ENOENT') }), () => 'C:\\Windows\\System32\\reg.exe', ErrorCode.INSTALL_ENTRY);
  const updates = updateUninstallEntries(reg, INSTALL, '1.1.0', { sizeKb: () => null, elevated: () => true });
  assert.deepEqual(
    updates.map((u) => [u.key, u.error?.code, u.error?.message]),
    (['HKCU', 'HKLM'] as const).map((hive) => [`${hive}\\${UNINSTALL_KEY}`, 'ERR_INSTALL_ENTRY', `Cannot run reg.exe to read ${hive}\\${UNINSTALL_KEY}: spawn reg.exe ENOENT.`]),
  );
});

test('Linux and macOS keep no list of installed programs for us: nothing to update', () => {
  assert.equal(createPlatform('linux').recordInstalledVersion('/opt/outpost', '1.1.0'), null);
  assert.equal(createPlatform('darwin').recordInstalledVersion('/Applications/Outpost.app', '1.1.0'), null);
});
