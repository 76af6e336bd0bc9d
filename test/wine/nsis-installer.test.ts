/**
 * The NSIS installer for real: build/installer.nsi compiled by Debian's makensis (tools/dist/nsis.ts)
 * around two packaged versions of the app with the STAND-IN Electron (test/helpers/package-lab.ts),
 * installed, upgraded over a running agent and uninstalled silently under Wine, per user and per
 * machine. Setup and its uninstaller are 64-bit programs.
 *
 * Every `wine` here gets OUTPOST_HOME (a temp folder): the agent Setup starts inherits it, as do its
 * --quit and autostart commands. Setup runs through `cmd /c`: NSIS reads `/D=` only last and
 * unquoted, while `wine` quotes an argument that holds a space. What Wine cannot show
 * (ENVIRONMENT.md): elevation (everyone is an administrator, so the refusal of an unelevated
 * /ALLUSERS is not exercised) and ACLs.
 */
import assert from 'node:assert/strict';
import crypto from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { test } from 'node:test';
import { readText } from '../../app/base/durable-file.js';
import { sameFolder } from '../../app/main/platform/win32-uninstall-entry.js';
import type { BuiltInstaller } from '../../tools/dist/installer-build.js';
import { buildNsisInstaller } from '../../tools/dist/nsis.js';
import { buildTestPackage } from '../helpers/package-lab.js';
import { tempDir } from '../helpers/paths.js';
import { stopWine, toWindowsPath } from './harness.js';
import { holdInstallerLock } from './installer-lock.js';
import { NSIS_ENTRY, NsisLab, RUN_KEY, treeSize, withoutSize, installerToolsOrSkip, stopwatch } from './installer-lab.js';
import { wineOrSkip } from './tier.js';

/** How long Setup waits for an update in flight before it gives up (STOP_WAIT_S in build/installer.nsi). */
const STOP_WAIT_MS = 60_000;
/** Setup's exit code when it installed Outpost but could not keep the enrollment secret of /ENROLL (EXIT_ENROLL). */
const EXIT_ENROLL = 9;

test('wine tier: the NSIS installer installs, upgrades over a running agent and uninstalls, per user and per machine', { timeout: 20 * 60_000 }, async (t) => {
  const wine = await wineOrSkip(t);
  if (!wine) return;
  if (!installerToolsOrSkip(t, { nsis: true })) return;
  t.after(() => stopWine(wine));
  const timed = stopwatch(t);

  const work = tempDir(t, 'outpost-nsis-');
  const installers: Record<string, BuiltInstaller> = {};
  for (const version of ['1.0.0', '1.1.0']) {
    const pkg = await timed(`package ${version}`, () => buildTestPackage(t, version));
    installers[version] = await timed(`makensis ${version}`, () =>
      buildNsisInstaller({ repoRoot: wine.repoRoot, appDir: pkg.appDir, outDir: path.join(work, 'out'), version, compression: 'fast', log: (line) => t.diagnostic(line) }),
    );
  }
  t.diagnostic(`installer 1.0.0: ${((installers['1.0.0']?.bytes ?? 0) / 1024 / 1024).toFixed(1)} MiB`);

  const home = path.join(work, 'home');
  const lab = new NsisLab(wine, work, { OUTPOST_HOME: toWindowsPath(home) });
  // Registered before the lock is taken, so that it runs while the lock is still held (hooks run in order).
  t.after(() => lab.cleanUp());
  await holdInstallerLock(t, wine);
  await lab.start();

  const userDir = path.join(work, 'Outpost Apps', 'Outpost');
  lab.installedIn(userDir);
  // The organisation's enrollment secret, as a deployment hands it to Setup (/ENROLL=FILE), and where
  // the agent keeps it: Wine's user is an administrator, so the file in its storage folder.
  const secret = crypto.randomBytes(32).toString('base64url');
  const secretFile = path.join(work, 'enroll.secret');
  fs.writeFileSync(secretFile, `${secret}\r\n`);
  const keptSecret = path.join(home, 'enrollment.secret');

  await t.test('refused: a folder holding other files (7), /ALLUSERS with /CURRENTUSER (64), /ENROLL= without a file (64); nothing written', async () => {
    const foreign = path.join(work, 'Not Outpost');
    fs.mkdirSync(foreign);
    fs.writeFileSync(path.join(foreign, 'notes.txt'), 'mine');
    const refused = await lab.install(installers['1.0.0'], `/S /CURRENTUSER /D=${toWindowsPath(foreign)}`);
    assert.equal(refused.code, 7, refused.log);
    assert.match(refused.log, /is not empty and holds no Outpost installation/);
    assert.deepEqual(fs.readdirSync(foreign), ['notes.txt']);
    assert.equal(await lab.reg(`HKCU\\${NSIS_ENTRY}`), null, 'no Uninstall entry');
    const usage = await lab.install(installers['1.0.0'], '/S /ALLUSERS /CURRENTUSER');
    assert.equal(usage.code, 64, usage.log);
    const noFile = await lab.install(installers['1.0.0'], '/S /CURRENTUSER /ENROLL=');
    assert.equal(noFile.code, 64, noFile.log);
    assert.match(noFile.log, /ERROR: \/ENROLL= needs the file that holds the organisation's enrollment secret/);
    assert.equal(await lab.reg(`HKCU\\${NSIS_ENTRY}`), null, 'no Uninstall entry');
  });

  await t.test('per user, silent, into a folder with a space, /ENROLL: files, Run value, Uninstall entry, shortcut, the enrollment secret kept, the agent running', async () => {
    const setup = await timed('install per user', () => lab.install(installers['1.0.0'], `/S /CURRENTUSER /ENROLL=${toWindowsPath(secretFile)} /D=${toWindowsPath(userDir)}`));
    assert.equal(setup.code, 0, setup.log);
    // The program kept it and said where; the log names the file, never the secret.
    const kept = `enrollment secret kept in ${toWindowsPath(keptSecret)}; the agent enrolls with it when it next talks to its backend`;
    assert.ok(setup.log.includes(`Outpost.exe --set-enrollment-secret "${toWindowsPath(secretFile)}": ${kept}`), setup.log);
    assert.ok(!setup.log.includes(secret), 'the secret is not in the log');
    assert.equal(fs.readFileSync(keptSecret, 'utf8').trim(), secret);
    for (const file of ['Outpost.exe', 'resources/app.asar', 'resources/updater/outpost-updater.exe']) {
      assert.ok(fs.existsSync(path.join(userDir, file)), `${file} installed`);
    }
    assert.ok(fs.existsSync(path.join(`${userDir}.uninstall`, 'Uninstall Outpost.exe')), 'the uninstaller beside the installation, out of the self-updater\'s way');
    const windowsDir = toWindowsPath(userDir);
    assert.equal((await lab.reg(`HKCU\\${RUN_KEY}`))?.get('outpost'), `"${windowsDir}\\Outpost.exe"`, 'the Run value, quoted');
    const entry = await lab.reg(`HKCU\\${NSIS_ENTRY}`);
    assert.ok(entry, `HKCU\\${NSIS_ENTRY} exists`);
    const uninstaller = `"${windowsDir}.uninstall\\Uninstall Outpost.exe"`;
    assert.deepEqual(withoutSize(entry), {
      displayname: 'Outpost',
      displayversion: '1.0.0',
      publisher: 'Outpost',
      displayicon: `${windowsDir}\\Outpost.exe,0`,
      installlocation: windowsDir,
      uninstallstring: uninstaller,
      quietuninstallstring: `${uninstaller} /S`,
      installscope: 'user',
      nomodify: '1',
      norepair: '1',
    });
    const { kb, files } = treeSize(userDir);
    const estimated = Number(entry.get('estimatedsize'));
    assert.ok(Math.abs(estimated - kb) <= files, `EstimatedSize ${estimated} KB for ${kb} KB in ${files} files`);
    assert.equal(await lab.reg(`HKLM\\${NSIS_ENTRY}`), null, 'no per-machine entry');
    assert.ok(fs.existsSync(path.join(lab.userPrograms, 'Outpost.lnk')), `the Start menu shortcut in ${lab.userPrograms}`);
    const status = await lab.waitForAgent(userDir, '1.0.0');
    assert.equal(status.state, 'IDLE');
  });

  await t.test('an update in flight (the updater backup beside the installation): Setup waits, then exits 3 without touching the running agent', async () => {
    const before = await lab.status(userDir);
    assert.equal(before?.version, '1.0.0');
    const backup = `${userDir}.outpost-backup`;
    fs.mkdirSync(backup);
    try {
      const started = Date.now();
      const busy = await timed('refused while updating', () => lab.install(installers['1.1.0'], '/S'));
      assert.equal(busy.code, 3, busy.log);
      assert.ok(Date.now() - started >= STOP_WAIT_MS, 'after the bounded wait');
      assert.match(busy.log, /Outpost is busy: an update is being applied .*still after 60 s/);
    } finally {
      fs.rmSync(backup, { recursive: true, force: true });
    }
    const after = await lab.status(userDir);
    assert.deepEqual([after?.pid, after?.version], [before?.pid, '1.0.0'], 'the same agent still runs');
    assert.equal((await lab.reg(`HKCU\\${NSIS_ENTRY}`))?.get('displayversion'), '1.0.0');
  });

  await t.test('upgrade over the running agent, /ENROLL naming a missing file: stopped gracefully first, the data folder intact, the new version installed and running, exit 9', async () => {
    const before = await lab.status(userDir);
    assert.equal(before?.version, '1.0.0');
    const config = fs.readFileSync(path.join(home, 'config.json'));
    fs.writeFileSync(path.join(home, 'marker.txt'), 'kept');
    // A file the new version does not have: the previous version's tree goes as a whole.
    fs.writeFileSync(path.join(userDir, 'resources', 'only-in-1.0.0.txt'), 'old');
    // A second folder for the same scope is refused: one installation per scope, one Uninstall entry.
    const second = await lab.install(installers['1.1.0'], `/S /D=${toWindowsPath(path.join(work, 'Second Outpost'))}`);
    assert.equal(second.code, 7, second.log);
    assert.match(second.log, /Outpost is already installed in Z:\\.*\\Outpost Apps\\Outpost: run this installer without \/D=/);
    assert.equal((await lab.status(userDir))?.pid, before?.pid, 'the agent left alone');
    // No scope and no /D: Setup upgrades the recorded installation, where and as it is. The secret's
    // file is missing: the installation stays, the exit code and a warning say so.
    const missing = toWindowsPath(path.join(work, 'no-such.secret'));
    const setup = await timed('upgrade per user', () => lab.install(installers['1.1.0'], `/S /ENROLL=${missing}`));
    assert.equal(setup.code, EXIT_ENROLL, setup.log);
    assert.ok(
      setup.log.includes(`WARNING: the enrollment secret is not kept: Outpost.exe --set-enrollment-secret "${missing}" exited with 78: `) &&
        setup.log.includes(`Cannot read the enrollment secret from ${missing}: ENOENT`),
      setup.log,
    );
    assert.equal(fs.readFileSync(keptSecret, 'utf8').trim(), secret, 'the secret kept before untouched');
    assert.match(setup.log, /scope: user; folder: Z:\\.*\\Outpost Apps\\Outpost\r?\n/);
    assert.match(setup.log, new RegExp(`Outpost\\.exe --quit: outpost: pid ${before?.pid} has shut down`));
    const log = readText(path.join(home, 'logs', 'outpost.log'));
    const asked = log.search(/state IDLE -> SHUTTING_DOWN: quit requested by pid \d+/);
    assert.ok(asked >= 0, 'the old agent was asked to stop over IPC');
    assert.match(log.slice(asked), /\[info\] stopped\r?\n/, 'and shut down gracefully');
    assert.deepEqual(fs.readFileSync(path.join(home, 'config.json')), config, 'config.json byte for byte');
    assert.equal(fs.readFileSync(path.join(home, 'marker.txt'), 'utf8'), 'kept');
    assert.equal(fs.existsSync(path.join(userDir, 'resources', 'only-in-1.0.0.txt')), false, "the previous version's leftovers are gone");
    assert.equal(fs.existsSync(`${userDir}.outpost-old`), false, 'the previous tree removed');
    assert.equal((await lab.reg(`HKCU\\${NSIS_ENTRY}`))?.get('displayversion'), '1.1.0');
    const after = await lab.waitForAgent(userDir, '1.1.0');
    assert.notEqual(after.pid, before?.pid, 'a new process');
  });

  await t.test('silent uninstall (QuietUninstallString): the agent stopped; files, Run value, entry, shortcut gone; the data folder kept', async () => {
    const removed = await timed('uninstall per user', () => lab.uninstall('HKCU', ''));
    assert.match(removed.log, /Outpost\.exe --quit: outpost: pid \d+ has shut down/);
    assert.deepEqual(lab.runningAgents(), [], 'no agent runs');
    assert.equal(fs.existsSync(userDir), false, `${userDir} removed; ${removed.log}`);
    assert.equal(fs.existsSync(`${userDir}.uninstall`), false, 'the uninstaller removed itself');
    assert.equal((await lab.reg(`HKCU\\${RUN_KEY}`))?.get('outpost'), undefined, 'the Run value removed');
    assert.equal(await lab.reg(`HKCU\\${NSIS_ENTRY}`), null, 'the Uninstall entry removed');
    assert.equal(fs.existsSync(path.join(lab.userPrograms, 'Outpost.lnk')), false, 'the shortcut removed');
    assert.equal(fs.readFileSync(path.join(home, 'marker.txt'), 'utf8'), 'kept', 'the data folder kept');
    assert.ok(fs.existsSync(path.join(home, 'config.json')));
    assert.match(removed.log, /kept the data folder/);
  });

  await t.test('the default per-user folder with /NOSTART; Outpost.exe then deleted (a damaged installation): uninstall /REMOVEDATA still removes the Run value, and the data folder', async () => {
    const defaultDir = path.join(lab.linuxPath(lab.localAppData), 'Programs', 'Outpost');
    assert.equal(fs.existsSync(defaultDir), false, `${defaultDir} exists before the test: a previous run left it`);
    lab.installedIn(defaultDir);
    const setup = await timed('install /NOSTART', () => lab.install(installers['1.1.0'], '/S /NOSTART'));
    assert.equal(setup.code, 0, setup.log);
    assert.ok(fs.existsSync(path.join(defaultDir, 'Outpost.exe')), `installed in ${defaultDir}`);
    assert.ok(sameFolder((await lab.reg(`HKCU\\${NSIS_ENTRY}`))?.get('installlocation') ?? '', `${lab.localAppData}\\Programs\\Outpost`));
    assert.equal(await lab.status(defaultDir), null, 'no agent started');
    assert.ok((await lab.reg(`HKCU\\${RUN_KEY}`))?.get('outpost'), 'the Run value registered');
    fs.rmSync(path.join(defaultDir, 'Outpost.exe'));
    const removed = await timed('uninstall /REMOVEDATA', () => lab.uninstall('HKCU', '/REMOVEDATA'));
    assert.equal((await lab.reg(`HKCU\\${RUN_KEY}`))?.get('outpost'), undefined, `the Run value removed without the program\n${removed.log}`);
    assert.match(removed.log, /removed the Run value Outpost, which the program had left/i);
    assert.equal(fs.existsSync(defaultDir), false, removed.log);
    assert.equal(fs.existsSync(home), false, `the data folder removed; ${removed.log}`);
  });

  await t.test('per machine (/ALLUSERS): Program Files, the HKLM Run value and entry in the 64-bit view, the common shortcut; uninstall removes the updater leftovers', async () => {
    const machineDir = path.join(wine.prefix, 'drive_c', 'Program Files', 'Outpost');
    assert.equal(fs.existsSync(machineDir), false, `${machineDir} exists before the test: a previous run left it`);
    lab.installedIn(machineDir);
    const setup = await timed('install per machine', () => lab.install(installers['1.0.0'], '/S /ALLUSERS'));
    assert.equal(setup.code, 0, setup.log);
    assert.ok(fs.existsSync(path.join(machineDir, 'Outpost.exe')), `installed in ${machineDir}`);
    assert.equal((await lab.reg(`HKLM\\${RUN_KEY}`))?.get('outpost'), '"C:\\Program Files\\Outpost\\Outpost.exe"');
    assert.equal((await lab.reg(`HKCU\\${RUN_KEY}`))?.get('outpost'), undefined, 'no per-user Run value');
    const entry = await lab.reg(`HKLM\\${NSIS_ENTRY}`);
    assert.equal(entry?.get('displayversion'), '1.0.0');
    assert.equal(entry?.get('installlocation'), 'C:\\Program Files\\Outpost');
    assert.equal(entry?.get('quietuninstallstring'), '"C:\\Program Files\\Outpost.uninstall\\Uninstall Outpost.exe" /S');
    assert.equal(entry?.get('installscope'), 'machine');
    assert.equal(await lab.reg(`HKLM\\Software\\WOW6432Node\\${NSIS_ENTRY}`), null, 'not in the 32-bit view');
    assert.equal(await lab.reg(`HKCU\\${NSIS_ENTRY}`), null, 'no per-user entry');
    assert.ok(fs.existsSync(path.join(lab.machinePrograms, 'Outpost.lnk')), `the shortcut in ${lab.machinePrograms}`);
    // Setup runs elevated here: an agent it started would run elevated, with the machine's data folder.
    assert.match(setup.log, /not started: installed for every user/);
    assert.deepEqual(lab.runningAgents(), []);

    // What the self-updater leaves beside the installation after a crash.
    fs.mkdirSync(path.join(`${machineDir}.outpost-backup`, 'resources'), { recursive: true });
    fs.writeFileSync(path.join(`${machineDir}.outpost-backup`, 'resources', 'app.asar'), 'backup');
    fs.mkdirSync(path.join(`${machineDir}.failed-0f1e2d3c`, 'resources'), { recursive: true });
    const removed = await timed('uninstall per machine', () => lab.uninstall('HKLM', ''));
    assert.equal(fs.existsSync(machineDir), false, removed.log);
    assert.equal(fs.existsSync(`${machineDir}.uninstall`), false, 'the uninstaller removed itself');
    assert.equal(fs.existsSync(`${machineDir}.outpost-backup`), false, 'the updater backup removed');
    assert.equal(fs.existsSync(`${machineDir}.failed-0f1e2d3c`), false, 'a failed version set aside removed');
    assert.equal((await lab.reg(`HKLM\\${RUN_KEY}`))?.get('outpost'), undefined);
    assert.equal(await lab.reg(`HKLM\\${NSIS_ENTRY}`), null);
    assert.equal(fs.existsSync(path.join(lab.machinePrograms, 'Outpost.lnk')), false);
  });
});
