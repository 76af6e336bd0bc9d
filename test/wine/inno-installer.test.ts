/**
 * The Inno Setup installer for real: build/installer.iss compiled by ISCC (tools/dist/inno.ts, in its
 * own Wine prefix) around two packaged versions of the app with the STAND-IN Electron
 * (test/helpers/package-lab.ts), installed, upgraded over a running agent and uninstalled silently
 * under Wine, per user and per machine. ISCC and Setup are 32-bit programs (wine32); Setup installs in
 * 64-bit mode, and needs `Graphics=null` to run without a display.
 *
 * Every `wine` here gets OUTPOST_HOME (a temp folder): the agent Setup starts inherits it, as do its
 * --quit and autostart commands. What Wine cannot show (ENVIRONMENT.md): elevation (everyone is an
 * administrator, so /ALLUSERS never shows a UAC prompt) and ACLs; nor a folder in use, which Wine
 * renames anyway, so the "in use" refusals are not exercised.
 */
import assert from 'node:assert/strict';
import crypto from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { test } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import { readText } from '../../app/base/durable-file.js';
import { sameFolder } from '../../app/main/platform/win32-uninstall-entry.js';
import { buildInnoInstaller } from '../../tools/dist/inno.js';
import type { BuiltInstaller } from '../../tools/dist/installer-build.js';
import { buildTestPackage } from '../helpers/package-lab.js';
import { tempDir } from '../helpers/paths.js';
import { stopWine, toWindowsPath } from './harness.js';
import { holdInstallerLock } from './installer-lock.js';
import { INNO_ENTRY, InnoLab, RUN_KEY, installerToolsOrSkip, stopwatch } from './installer-lab.js';
import { wineOrSkip } from './tier.js';

/** Setup's exit code when PrepareToInstall refuses to go on (Inno Setup's own). */
const PREPARE_FAILED = 7;
/** Setup's exit code when InitializeSetup refuses to start (Inno Setup's own). */
const SETUP_NOT_STARTED = 1;
/** Setup's exit code when it installed Outpost but could not keep the enrollment secret of /ENROLL (ours, EXIT_ENROLL). */
const EXIT_ENROLL = 9;

test('wine tier: the Inno Setup installer installs, upgrades over a running agent and uninstalls, per user and per machine', { timeout: 20 * 60_000 }, async (t) => {
  const wine = await wineOrSkip(t);
  if (!wine) return;
  if (!installerToolsOrSkip(t, { inno: true })) return;
  t.after(() => stopWine(wine));
  const timed = stopwatch(t);

  const work = tempDir(t, 'outpost-inno-');
  const installers: Record<string, BuiltInstaller> = {};
  const appDirs: Record<string, string> = {};
  for (const version of ['1.0.0', '1.1.0']) {
    const pkg = await timed(`package ${version}`, () => buildTestPackage(t, version));
    appDirs[version] = pkg.appDir;
    installers[version] = await timed(`ISCC ${version}`, () =>
      buildInnoInstaller({ repoRoot: wine.repoRoot, appDir: pkg.appDir, outDir: path.join(work, 'out'), version, compression: 'fast', log: (line) => t.diagnostic(line) }),
    );
  }
  t.diagnostic(`installer 1.0.0: ${((installers['1.0.0']?.bytes ?? 0) / 1024 / 1024).toFixed(1)} MiB`);

  const home = path.join(work, 'home');
  const lab = new InnoLab(wine, work, { OUTPOST_HOME: toWindowsPath(home) });
  // Registered before the lock is taken, so that it runs while the lock is still held (hooks run in order).
  t.after(() => lab.cleanUp());
  await holdInstallerLock(t, wine);
  await lab.start();

  const userDir = path.join(work, 'Outpost Apps', 'Outpost');
  lab.installedIn(userDir);
  // The organisation's enrollment secret, as a deployment hands it to Setup (/ENROLL=FILE, here in a
  // folder with a space), and where the agent keeps it: Wine's user is an administrator, so the file in
  // its storage folder.
  const secret = crypto.randomBytes(32).toString('base64url');
  const secretFile = path.join(work, 'Enroll Files', 'enroll.secret');
  fs.mkdirSync(path.dirname(secretFile));
  fs.writeFileSync(secretFile, `${secret}\r\n`);
  const keptSecret = path.join(home, 'enrollment.secret');

  await t.test('refused: a folder holding other files (exit 7), /ENROLL= without a file (exit 1); nothing written', async () => {
    const foreign = path.join(work, 'Not Outpost');
    fs.mkdirSync(foreign);
    fs.writeFileSync(path.join(foreign, 'notes.txt'), 'mine');
    const refused = await lab.setup(installers['1.0.0'], ['/CURRENTUSER', `/DIR=${toWindowsPath(foreign)}`]);
    assert.equal(refused.code, PREPARE_FAILED, refused.log);
    assert.match(refused.log, /is not empty and holds no Outpost installation/);
    assert.deepEqual(fs.readdirSync(foreign), ['notes.txt']);
    assert.equal(await lab.reg(`HKCU\\${INNO_ENTRY}`), null, 'no Uninstall entry');
    const noFile = await lab.setup(installers['1.0.0'], ['/CURRENTUSER', '/ENROLL=']);
    assert.equal(noFile.code, SETUP_NOT_STARTED, noFile.log);
    assert.match(noFile.log, /ERROR: \/ENROLL= needs the file that holds the organisation's enrollment secret/);
    assert.equal(await lab.reg(`HKCU\\${INNO_ENTRY}`), null, 'no Uninstall entry');
  });

  await t.test('per user, into a folder with a space, /ENROLL: files, uninstaller beside them, Run value, Uninstall entry, shortcut, the enrollment secret kept, the agent running', async () => {
    const setup = await timed('install per user', () => lab.setup(installers['1.0.0'], ['/CURRENTUSER', `/DIR=${toWindowsPath(userDir)}`, `/ENROLL=${toWindowsPath(secretFile)}`]));
    assert.equal(setup.code, 0, setup.log);
    // The program kept it and said where; the log names the file, never the secret.
    const kept = `enrollment secret kept in ${toWindowsPath(keptSecret)}; the agent enrolls with it when it next talks to its backend`;
    assert.ok(setup.log.includes(`Outpost.exe --set-enrollment-secret "${toWindowsPath(secretFile)}": ${kept}`), setup.log);
    assert.ok(!setup.log.includes(secret), 'the secret is not in the log');
    assert.equal(fs.readFileSync(keptSecret, 'utf8').trim(), secret);
    for (const file of ['Outpost.exe', 'resources/app.asar', 'resources/updater/outpost-updater.exe']) {
      assert.ok(fs.existsSync(path.join(userDir, file)), `${file} installed`);
    }
    assert.deepEqual(fs.readdirSync(`${userDir}.uninstall`).sort(), ['unins000.dat', 'unins000.exe'], "the uninstaller beside the installation, out of the self-updater's way");
    assert.equal(fs.readdirSync(userDir).filter((name) => /^unins/i.test(name)).length, 0, 'the installation is the packaged tree only');
    const windowsDir = toWindowsPath(userDir);
    assert.equal((await lab.reg(`HKCU\\${RUN_KEY}`))?.get('outpost'), `"${windowsDir}\\Outpost.exe"`, 'the Run value, quoted');
    assert.match(setup.log, /Outpost\.exe --enable-autostart --scope user: done/);
    const entry = await lab.reg(`HKCU\\${INNO_ENTRY}`);
    assert.ok(entry, `HKCU\\${INNO_ENTRY} exists`);
    assert.equal(entry.get('displayname'), 'Outpost');
    assert.equal(entry.get('displayversion'), '1.0.0');
    assert.equal(entry.get('publisher'), 'Outpost');
    assert.equal(entry.get('displayicon'), `${windowsDir}\\Outpost.exe`);
    assert.ok(sameFolder(entry.get('installlocation') ?? '', windowsDir), `InstallLocation ${entry.get('installlocation')} (Inno Setup adds a backslash)`);
    assert.equal(entry.get('quietuninstallstring'), `"${windowsDir}.uninstall\\unins000.exe" /SILENT /LOG`, "Inno Setup's, with its log (UninstallLogging)");
    const sizeKb = Number(entry.get('estimatedsize'));
    assert.ok(sizeKb > 50_000, `EstimatedSize ${sizeKb} KB (the app is about 186 MB)`);
    assert.equal(await lab.reg(`HKLM\\${INNO_ENTRY}`), null, 'no per-machine entry');
    assert.ok(fs.existsSync(path.join(lab.userPrograms, 'Outpost.lnk')), `the Start menu shortcut in ${lab.userPrograms}`);
    assert.match(setup.log, /Started Z:\\.*\\Outpost\.exe/);
    const status = await lab.waitForAgent(userDir, '1.0.0');
    assert.equal(status.state, 'IDLE');
  });

  await t.test("refused: an agent that cannot be stopped (Setup exit 7 naming --quit's code, uninstaller exit 1); a second folder for the same mode; nothing changed", async () => {
    const before = await lab.status(userDir);
    // Another secret than the agent's: --quit fails authentication (exit 4).
    const secretFile = path.join(home, 'ipc.secret');
    const secret = fs.readFileSync(secretFile);
    fs.writeFileSync(secretFile, 'A'.repeat(43));
    try {
      const setup = await timed('refused upgrade', () => lab.setup(installers['1.1.0'], ['/CURRENTUSER']));
      assert.equal(setup.code, PREPARE_FAILED, setup.log);
      assert.match(setup.log, /Outpost could not be stopped: Outpost\.exe --quit exited with code 4 \(authentication with the running agent failed\)/);
      const uninstall = await timed('refused uninstall', () => lab.uninstall('HKCU', []));
      assert.equal(uninstall.code, 1, uninstall.log);
      assert.match(uninstall.log, /ERROR: Outpost could not be stopped: Outpost\.exe --quit exited with code 4/);
      assert.ok(fs.existsSync(path.join(`${userDir}.uninstall`, 'unins000.exe')) && fs.existsSync(path.join(userDir, 'Outpost.exe')), 'nothing removed');
    } finally {
      fs.writeFileSync(secretFile, secret);
    }
    const second = await lab.setup(installers['1.1.0'], ['/CURRENTUSER', `/DIR=${toWindowsPath(path.join(work, 'Second Outpost'))}`]);
    assert.equal(second.code, PREPARE_FAILED, second.log);
    assert.match(second.log, /Outpost is already installed in Z:\\.*\\Outpost Apps\\Outpost: run this installer without \/DIR=/);
    assert.equal((await lab.reg(`HKCU\\${INNO_ENTRY}`))?.get('displayversion'), '1.0.0');
    const after = await lab.status(userDir);
    assert.deepEqual([after?.pid, after?.version], [before?.pid, '1.0.0'], 'the same agent still runs, from its files');
  });

  await t.test('upgrade over the running agent, while an update finishes, /ENROLL naming a missing file: waited for, stopped gracefully, the data folder intact, the new version installed and running, exit 9', async () => {
    const before = await lab.status(userDir);
    assert.equal(before?.version, '1.0.0');
    const config = fs.readFileSync(path.join(home, 'config.json'));
    fs.writeFileSync(path.join(home, 'marker.txt'), 'kept');
    // A file the new version does not have: the previous version's tree goes as a whole.
    fs.writeFileSync(path.join(userDir, 'resources', 'only-in-1.0.0.txt'), 'old');
    // An update in flight (the updater's backup beside the installation), done a few seconds later.
    const backup = `${userDir}.outpost-backup`;
    fs.mkdirSync(backup);
    const updateDone = sleep(5_000).then(() => fs.rmSync(backup, { recursive: true, force: true }));
    // No mode and no /DIR: Setup upgrades the previous installation, where and as it is. The secret's
    // file is missing: the installation stays, the exit code and a warning say so.
    const missing = toWindowsPath(path.join(work, 'no-such.secret'));
    const setup = await timed('upgrade per user', () => lab.setup(installers['1.1.0'], [`/ENROLL=${missing}`]));
    await updateDone;
    assert.equal(setup.code, EXIT_ENROLL, setup.log);
    assert.ok(
      setup.log.includes(`WARNING: the enrollment secret is not kept: Outpost.exe --set-enrollment-secret "${missing}" exited with code 78: `) &&
        setup.log.includes(`Cannot read the enrollment secret from ${missing}: ENOENT`),
      setup.log,
    );
    assert.equal(fs.readFileSync(keptSecret, 'utf8').trim(), secret, 'the secret kept before untouched');
    assert.match(setup.log, /Waiting: an update is being applied/);
    assert.match(setup.log, /Outpost\.exe --quit exited with code 0/);
    const log = readText(path.join(home, 'logs', 'outpost.log'));
    const asked = log.search(/state IDLE -> SHUTTING_DOWN: quit requested by pid \d+/);
    assert.ok(asked >= 0, 'the old agent was asked to stop over IPC');
    assert.match(log.slice(asked), /\[info\] stopped\r?\n/, 'and shut down gracefully');
    assert.deepEqual(fs.readFileSync(path.join(home, 'config.json')), config, 'config.json byte for byte');
    assert.equal(fs.readFileSync(path.join(home, 'marker.txt'), 'utf8'), 'kept');
    assert.equal(fs.existsSync(path.join(userDir, 'resources', 'only-in-1.0.0.txt')), false, "the previous version's leftovers are gone");
    assert.equal(fs.existsSync(`${userDir}.outpost-old`), false, 'the previous tree removed');
    assert.ok(fs.existsSync(path.join(`${userDir}.uninstall`, 'unins000.exe')));
    const entry = await lab.reg(`HKCU\\${INNO_ENTRY}`);
    assert.equal(entry?.get('displayversion'), '1.1.0');
    assert.ok(sameFolder(entry?.get('installlocation') ?? '', toWindowsPath(userDir)), 'the same folder');
    const after = await lab.waitForAgent(userDir, '1.1.0');
    assert.notEqual(after.pid, before?.pid, 'a new process');
  });

  await t.test('after a self-update (the folder swapped whole), uninstall: the agent stopped; files, Run value, entry, shortcut, updater leftovers gone; the data folder kept', async () => {
    // What the self-updater does (updater/run-job.ts): the agent stops, the installation moves to its
    // backup, the staged tree (the release's files only, here with one Setup never installed) takes
    // its place, the backup goes, and the new version starts from the installation.
    const stopped = await lab.run([path.join(userDir, 'Outpost.exe'), '--quit']);
    assert.equal(stopped.code, 0, stopped.stderr);
    const swapped = `${userDir}.swapped-out`;
    fs.renameSync(userDir, swapped);
    fs.cpSync(appDirs['1.1.0'] ?? '', userDir, { recursive: true });
    fs.writeFileSync(path.join(userDir, 'resources', 'new-in-an-update.txt'), 'not in the uninstall log');
    fs.rmSync(swapped, { recursive: true, force: true });
    lab.launch(path.join(userDir, 'Outpost.exe'));
    await lab.waitForAgent(userDir, '1.1.0');
    // And what it leaves beside the installation after a crash.
    fs.mkdirSync(path.join(`${userDir}.outpost-backup`, 'resources'), { recursive: true });
    fs.writeFileSync(path.join(`${userDir}.outpost-backup`, 'resources', 'app.asar'), 'backup');
    fs.mkdirSync(path.join(`${userDir}.failed-0f1e2d3c`, 'resources'), { recursive: true });
    const removed = await timed('uninstall per user', () => lab.uninstall('HKCU', []));
    assert.equal(removed.code, 0, removed.log);
    assert.match(removed.log, /Outpost\.exe --quit exited with code 0/);
    assert.match(removed.log, /Outpost\.exe --disable-autostart --scope user: done/);
    assert.match(removed.log, /Removed all\? Yes/);
    assert.deepEqual(lab.runningAgents(), [], 'no agent runs');
    assert.equal(fs.existsSync(userDir), false, `${userDir} removed`);
    assert.equal(fs.existsSync(`${userDir}.uninstall`), false, 'the uninstaller removed itself');
    assert.equal(fs.existsSync(`${userDir}.outpost-backup`), false, 'the updater backup removed');
    assert.equal(fs.existsSync(`${userDir}.failed-0f1e2d3c`), false, 'a failed version set aside removed');
    assert.equal((await lab.reg(`HKCU\\${RUN_KEY}`))?.get('outpost'), undefined, 'the Run value removed');
    assert.equal(await lab.reg(`HKCU\\${INNO_ENTRY}`), null, 'the Uninstall entry removed');
    assert.equal(fs.existsSync(path.join(lab.userPrograms, 'Outpost.lnk')), false, 'the shortcut removed');
    assert.equal(fs.readFileSync(path.join(home, 'marker.txt'), 'utf8'), 'kept', 'the data folder kept');
    assert.ok(fs.existsSync(path.join(home, 'config.json')));
    assert.match(removed.log, /Kept the data folder/);
  });

  await t.test('the default per-user folder with /NOSTART; Outpost.exe then deleted (a damaged installation): uninstall /REMOVEDATA still removes the Run value, and the data folder', async () => {
    const defaultDir = path.join(lab.linuxPath(lab.localAppData), 'Programs', 'Outpost');
    assert.equal(fs.existsSync(defaultDir), false, `${defaultDir} exists before the test: a previous run left it`);
    lab.installedIn(defaultDir);
    const setup = await timed('install /NOSTART', () => lab.setup(installers['1.1.0'], ['/CURRENTUSER', '/NOSTART']));
    assert.equal(setup.code, 0, setup.log);
    assert.ok(fs.existsSync(path.join(defaultDir, 'Outpost.exe')), `installed in ${defaultDir}`);
    assert.ok(sameFolder((await lab.reg(`HKCU\\${INNO_ENTRY}`))?.get('installlocation') ?? '', `${lab.localAppData}\\Programs\\Outpost`));
    assert.match(setup.log, /Not started \(\/NOSTART\)/);
    assert.deepEqual(lab.runningAgents(), [], 'no agent started');
    assert.ok((await lab.reg(`HKCU\\${RUN_KEY}`))?.get('outpost'), 'the Run value registered');
    fs.rmSync(path.join(defaultDir, 'Outpost.exe'));
    const removed = await timed('uninstall /REMOVEDATA', () => lab.uninstall('HKCU', ['/REMOVEDATA']));
    assert.equal((await lab.reg(`HKCU\\${RUN_KEY}`))?.get('outpost'), undefined, `the Run value removed without the program\n${removed.log}`);
    assert.match(removed.log, /removed the Run value Outpost, which the program had left/i);
    assert.equal(removed.code, 0, removed.log);
    assert.equal(fs.existsSync(defaultDir), false, removed.log);
    assert.equal(fs.existsSync(home), false, `the data folder removed; ${removed.log}`);
  });

  await t.test('per machine (/ALLUSERS): Program Files, the HKLM Run value and entry in the 64-bit view, the common shortcut, no agent started; upgraded as it is; uninstall', async () => {
    const machineDir = path.join(wine.prefix, 'drive_c', 'Program Files', 'Outpost');
    assert.equal(fs.existsSync(machineDir), false, `${machineDir} exists before the test: a previous run left it`);
    lab.installedIn(machineDir);
    const setup = await timed('install per machine', () => lab.setup(installers['1.0.0'], ['/ALLUSERS']));
    assert.equal(setup.code, 0, setup.log);
    assert.ok(fs.existsSync(path.join(machineDir, 'Outpost.exe')), `installed in ${machineDir}`);
    assert.ok(fs.existsSync(path.join(`${machineDir}.uninstall`, 'unins000.exe')));
    assert.equal((await lab.reg(`HKLM\\${RUN_KEY}`))?.get('outpost'), '"C:\\Program Files\\Outpost\\Outpost.exe"');
    assert.equal((await lab.reg(`HKCU\\${RUN_KEY}`))?.get('outpost'), undefined, 'no per-user Run value');
    const entry = await lab.reg(`HKLM\\${INNO_ENTRY}`);
    assert.equal(entry?.get('displayversion'), '1.0.0');
    assert.ok(sameFolder(entry?.get('installlocation') ?? '', 'C:\\Program Files\\Outpost'), `InstallLocation ${entry?.get('installlocation')}`);
    assert.equal(entry?.get('quietuninstallstring'), '"C:\\Program Files\\Outpost.uninstall\\unins000.exe" /SILENT /LOG');
    assert.equal(await lab.reg(`HKLM\\Software\\WOW6432Node\\${INNO_ENTRY}`), null, 'not in the 32-bit view');
    assert.equal(await lab.reg(`HKCU\\${INNO_ENTRY}`), null, 'no per-user entry');
    assert.ok(fs.existsSync(path.join(lab.machinePrograms, 'Outpost.lnk')), `the shortcut in ${lab.machinePrograms}`);
    // Setup runs elevated: an agent it started would run elevated, with the machine's data folder.
    assert.match(setup.log, /Not started: installed for every user/);
    assert.deepEqual(lab.runningAgents(), []);

    // The agent as a user's sign-in starts it; then an upgrade with neither /ALLUSERS nor /CURRENTUSER.
    lab.launch(path.join(machineDir, 'Outpost.exe'));
    const running = await lab.waitForAgent(machineDir, '1.0.0');
    const upgrade = await timed('upgrade per machine', () => lab.setup(installers['1.1.0'], []));
    assert.equal(upgrade.code, 0, upgrade.log);
    assert.match(upgrade.log, /Administrative install mode: Yes/);
    assert.match(upgrade.log, /Outpost\.exe --quit exited with code 0/);
    assert.equal((await lab.reg(`HKLM\\${INNO_ENTRY}`))?.get('displayversion'), '1.1.0');
    assert.equal(await lab.reg(`HKCU\\${INNO_ENTRY}`), null, 'still no per-user entry');
    assert.deepEqual(lab.runningAgents(), [], `the agent (pid ${running.pid}) stopped, and none started`);

    const removed = await timed('uninstall per machine', () => lab.uninstall('HKLM', []));
    assert.equal(removed.code, 0, removed.log);
    assert.match(removed.log, /Outpost\.exe --disable-autostart --scope machine: done/);
    assert.equal(fs.existsSync(machineDir), false, removed.log);
    assert.equal(fs.existsSync(`${machineDir}.uninstall`), false, 'the uninstaller removed itself');
    assert.equal((await lab.reg(`HKLM\\${RUN_KEY}`))?.get('outpost'), undefined);
    assert.equal(await lab.reg(`HKLM\\${INNO_ENTRY}`), null);
    assert.equal(fs.existsSync(path.join(lab.machinePrograms, 'Outpost.lnk')), false);
    assert.ok(fs.existsSync(path.join(home, 'config.json')), 'the data folder kept');
  });
});
