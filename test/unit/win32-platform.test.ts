import assert from 'node:assert/strict';
import { test } from 'node:test';
import { isOutpostError } from '../../app/base/errors.js';
import { type CommandRunner, SID, storageAclCommands, Win32Platform } from '../../app/main/platform/win32.js';

/** A CommandRunner that records the command lines and answers like the Windows tools would. */
function recordingRunner(answers: Partial<Record<string, { status: number; stdout?: string; stderr?: string }>> = {}) {
  const calls: string[][] = [];
  const run: CommandRunner = (file, args) => {
    calls.push([file, ...args]);
    const answer = answers[file] ?? { status: 0 };
    return { status: answer.status, stdout: answer.stdout ?? '', stderr: answer.stderr ?? '' };
  };
  return { calls, run };
}

const USER_SID = 'S-1-5-21-1111111111-2222222222-3333333333-1001';
const WHOAMI = { status: 0, stdout: `"desktop-7\\ann","${USER_SID}"\r\n` };

test('Windows per-machine storage DACL (Wine is not faithful for ACLs: checks the exact icacls command lines)', () => {
  assert.deepEqual(storageAclCommands('C:\\ProgramData\\Outpost', true, null), [
    ['C:\\ProgramData\\Outpost', '/setowner', '*S-1-5-32-544'],
    ['C:\\ProgramData\\Outpost', '/inheritance:r', '/grant:r', '*S-1-5-18:(OI)(CI)F', '*S-1-5-32-544:(OI)(CI)F'],
    ['C:\\ProgramData\\Outpost', '/remove:g', '*S-1-1-0', '*S-1-5-11', '*S-1-5-32-545'],
  ]);
});

test('Windows per-user storage DACL adds the user by SID, keeps the owner (Wine not faithful: command lines only)', () => {
  const { calls, run } = recordingRunner({ whoami: WHOAMI });
  const platform = new Win32Platform({}, run);
  const dir = process.cwd(); // an existing folder: mkdir is real, icacls is recorded
  const security = platform.secureDirectory(dir, false);
  assert.deepEqual(calls, [
    ['whoami', '/user', '/fo', 'csv', '/nh'],
    ['icacls', dir, '/inheritance:r', '/grant:r', `*${SID.SYSTEM}:(OI)(CI)F`, `*${SID.ADMINISTRATORS}:(OI)(CI)F`, `*${USER_SID}:(OI)(CI)F`],
    ['icacls', dir, '/remove:g', `*${SID.EVERYONE}`, `*${SID.AUTHENTICATED_USERS}`, `*${SID.USERS}`],
  ]);
  assert.match(security.permissions, /protected DACL/);
});

test('Windows storage: an icacls failure (folder owned by someone else) refuses to run (Wine not faithful: simulated answer)', () => {
  const { run } = recordingRunner({ whoami: WHOAMI, icacls: { status: 5, stderr: 'Access is denied.' } });
  assert.throws(
    () => new Win32Platform({}, run).secureDirectory(process.cwd(), false),
    (error) => isOutpostError(error, 'ERR_STORAGE_UNSAFE') && error.exitCode === 77 && /Access is denied/.test(error.message),
  );
});

test('Windows default storage folders come from the environment (per machine, per user, fallbacks)', () => {
  const env = { ProgramData: 'D:\\PD', LOCALAPPDATA: 'C:\\Users\\ann\\AppData\\Local', USERPROFILE: 'C:\\Users\\ann' };
  assert.equal(new Win32Platform(env).defaultStorageDir(true), 'D:\\PD\\Outpost');
  assert.equal(new Win32Platform(env).defaultStorageDir(false), 'C:\\Users\\ann\\AppData\\Local\\Outpost');
  assert.equal(new Win32Platform({ USERPROFILE: 'C:\\Users\\bob' }).defaultStorageDir(false), 'C:\\Users\\bob\\AppData\\Local\\Outpost');
  assert.equal(new Win32Platform({}).defaultStorageDir(true), 'C:\\ProgramData\\Outpost');
});
