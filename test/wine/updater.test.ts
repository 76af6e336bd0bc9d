import { ExitCode } from '../../app/common/exit-codes.js';
/**
 * The Windows updater single executable end to end under Wine: the real outpost-updater.exe (built by
 * tools/sea/build-updater.ts, with the Wine 8 patch applied to a test copy, see test/updater/sea.test.ts)
 * runs a job on a real install tree, with real Windows processes around it: the old agent it waits
 * for, the agent it launches (Windows Node running the compiled agent from the installed tree's entry
 * point), and a process holding a file open.
 *
 * The updater runs as a release runs it: from a copy of the executable in updates/updater-<job>/, with
 * ffi-rs and its win32 binding in a node_modules/ beside it. The test lays that folder out itself,
 * mirroring handoff.ts prepareUpdater (the real hand-off needs a signed feed and a Windows agent that
 * stages from it; here the job and the staged tree are written directly, as the agent would leave them).
 * The updater's environment has no NODE_PATH leading to ffi-rs, so the executable can only load it
 * from beside itself; Wine's loader trace (WINEDEBUG +loaddll) shows which binding it loaded, and its
 * fixme trace shows the Restart Manager calls made through it.
 *
 * What Wine does differently from Windows (ENVIRONMENT.md, and measured here):
 * - It renames a folder that holds an open file, or holds a process's working folder further down;
 *   Windows refuses both. The updater therefore asks file by file before it renames (findHeldFiles),
 *   which the held-file tests exercise. A folder that is itself a process's working folder it refuses
 *   to rename (EBUSY), as Windows does: the success test starts the updater with its working folder in
 *   the installation, as an agent started from its own folder passes it on, which the updater must
 *   leave before the backup (updater/main.ts).
 * - Its Restart Manager (rstrtmgr.dll) is a stub that names nobody, so the report says the holder is
 *   unknown; on Windows it names the holding process (node.exe and its pid).
 * - Trace output of Wine itself (WINEDEBUG) goes to the Unix stderr a process inherited, even for the
 *   agents the updater launches with stdio 'ignore': lines are told apart by their pid prefix.
 */
import assert from 'node:assert/strict';
import crypto from 'node:crypto';
import fs from 'node:fs';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import path from 'node:path';
import { type TestContext, test } from 'node:test';
import { ErrorReport } from '../../app/common/reports.js';
import type { UpdaterJob } from '../../app/common/update-files.js';
import { DEFAULT_CONFIG } from '../../app/main/core/config-schema.js';
import { readText } from '../../app/base/durable-file.js';
import { readJournal } from '../../app/base/update-records.js';
import { journalLines } from '../helpers/update-lab.js';
import { buildUpdaterExecutables } from '../../tools/sea/build-updater.js';
import { disableVirtualAlloc2Lookup } from '../../tools/sea/pe.js';
import { FORWARD_STEPS, ROLLBACK_STEPS } from '../../app/common/update-files.js';
import { folderSizeKb, UNINSTALL_KEY } from '../../app/main/platform/win32-uninstall-entry.js';
import { OUTPOST_BIN, tempDir } from '../helpers/paths.js';
import { until } from '../helpers/wait.js';
import { runWindowsNode, spawnWindowsNode, stopWine, toWindowsPath } from './harness.js';
import { wineOrSkip } from './tier.js';

/** The packages the updater executable loads from beside itself (installation.ts: ffi-rs and its installed binding). */
const WIN32_BINDING = '@yuuang/ffi-rs-win32-x64-msvc';

/** Windows Node: the agent that handed over. It exits shortly after the updater confirms (its ready file), as the real one shuts down. */
const OLD_AGENT_SCRIPT = `
const fs = require('fs');
const [ready, exited] = process.argv.slice(2);
console.log('old agent ' + process.pid);
const timer = setInterval(() => {
  if (!fs.existsSync(ready)) return;
  clearInterval(timer);
  setTimeout(() => { fs.writeFileSync(exited, new Date().toISOString()); process.exit(0); }, 500);
}, 20);
`;

/** Windows Node: opens a file as Node opens files (sharing read, write and delete) and keeps it open until killed. */
const HOLD_SCRIPT = `
const fs = require('fs');
fs.openSync(process.argv[2], 'r');
console.log('holding ' + process.pid);
setInterval(() => {}, 1000);
`;

/**
 * Windows Node: runs reg.exe (the 64-bit one, on the 64-bit view) once per argument list in
 * OUTPOST_TEST_REG (JSON, ASCII-escaped so that no code page comes between), and prints what each said.
 */
const REG_SCRIPT = `
const { spawnSync } = require('child_process');
const runs = JSON.parse(process.env.OUTPOST_TEST_REG).map((args) => {
  const r = spawnSync('reg', [...args, '/reg:64'], { encoding: 'utf8' });
  return { status: r.status, stdout: r.stdout, stderr: r.stderr };
});
console.log(JSON.stringify(runs));
`;

/** Files of the two versions: B changes some, removes one, adds one (nested folders included). */
function trees(entry: string): { a: Record<string, string | Buffer>; b: Record<string, string | Buffer> } {
  const shared = { 'resources/readme.txt': 'the same in both versions\n', 'lib/nested/deep/shared.bin': crypto.randomBytes(48 * 1024) };
  return {
    a: {
      ...shared,
      'package.json': `${JSON.stringify({ name: 'outpost-wine-app', version: '1.0.0' })}\n`,
      'main.mjs': entry,
      'lib/core.js': 'exports.version = 1;\n',
      'lib/nested/deep/data.bin': crypto.randomBytes(64 * 1024),
      'removed-in-b.txt': 'only in 1.0.0\n',
    },
    b: {
      ...shared,
      'package.json': `${JSON.stringify({ name: 'outpost-wine-app', version: '1.1.0' })}\n`,
      'main.mjs': `// 1.1.0\n${entry}`,
      'lib/core.js': 'exports.version = 2;\n',
      'lib/nested/deep/data.bin': crypto.randomBytes(80 * 1024),
      'added/in-b/new.txt': 'only in 1.1.0\n',
    },
  };
}

function writeTree(dir: string, files: Record<string, string | Buffer>): void {
  for (const [name, content] of Object.entries(files)) {
    fs.mkdirSync(path.dirname(path.join(dir, name)), { recursive: true });
    fs.writeFileSync(path.join(dir, name), content);
  }
}

/** Every folder and regular file under `dir`, relative path -> base64 bytes ('dir' for folders), to compare trees byte for byte. */
function treeOf(dir: string): Record<string, string> {
  const out: Record<string, string> = {};
  const walk = (d: string) => {
    for (const entry of fs.readdirSync(d, { withFileTypes: true })) {
      const p = path.join(d, entry.name);
      const name = path.relative(dir, p).split(path.sep).join('/');
      if (entry.isDirectory()) {
        out[`${name}/`] = 'dir';
        walk(p);
      } else {
        out[name] = fs.readFileSync(p).toString('base64');
      }
    }
  };
  walk(dir);
  return out;
}

/** What a backend would receive: every POST /reports, answered 503 so that the agent keeps its buffer. */
async function startBackend(t: TestContext): Promise<{ url: string; received: { agent: string; report: ErrorReport }[] }> {
  const received: { agent: string; report: ErrorReport }[] = [];
  const server = http.createServer((request, response) => {
    let body = '';
    request.setEncoding('utf8').on('data', (chunk: string) => {
      body += chunk;
    });
    request.on('end', () => {
      if (request.method === 'POST' && request.url === '/reports') {
        try {
          received.push({ agent: request.headers['user-agent'] ?? '', report: ErrorReport.parse(JSON.parse(body)) });
        } catch {
          // not a report: the assertions look for the ones they expect
        }
      }
      response.writeHead(503).end();
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  t.after(() => {
    server.closeAllConnections();
    server.close();
  });
  return { url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`, received };
}

/** One job: Linux paths for the test, the job itself with the Windows paths the updater sees. */
interface Case {
  readonly home: string;
  readonly install: string;
  readonly staged: string;
  readonly backup: string;
  readonly copyDir: string;
  readonly exe: string;
  readonly job: UpdaterJob;
  readonly jobFile: string;
  readonly journal: string;
  /** The ready file, as the Windows updater names it. */
  readonly readyFile: string;
  readonly a: Record<string, string>;
  readonly b: Record<string, string>;
  readonly received: { agent: string; report: ErrorReport }[];
  readonly log: () => string;
}

test('wine tier: the Windows updater executable swaps a real install tree under Wine', { timeout: 10 * 60_000 }, async (t) => {
  const wine = await wineOrSkip(t);
  if (!wine) return;
  t.after(() => stopWine(wine));
  const timings: string[] = [];
  t.after(() => t.diagnostic(`Wine timings: ${timings.join('; ')}`));

  const built = await buildUpdaterExecutables({ repoRoot: wine.repoRoot, platforms: ['win32'], outDir: tempDir(t, 'outpost-sea-win32-') });
  const shipped = built.executables[0];
  assert.ok(shipped);
  timings.push(`executable ${shipped.fromCache ? 'from cache' : 'built'} in ${shipped.ms} ms`);
  // The Wine 8 patch, on the test copy only (see test/updater/sea.test.ts).
  const exeBytes = fs.readFileSync(shipped.path);
  disableVirtualAlloc2Lookup(exeBytes);
  const work = tempDir(t, 'outpost-wine-updater-');
  const script = (name: string, text: string) => {
    fs.writeFileSync(path.join(work, name), text);
    return toWindowsPath(path.join(work, name));
  };
  const oldAgentScript = script('old-agent.cjs', OLD_AGENT_SCRIPT);
  const holdScript = script('hold.cjs', HOLD_SCRIPT);
  const packagesDir = path.join(wine.repoRoot, '.cache', 'wine', 'pkgs', 'node_modules');
  // The installed build's entry point: Windows Node runs it; it starts the compiled agent (bin/outpost.js).
  const entry = `import ${JSON.stringify(new URL(`file:///${toWindowsPath(OUTPOST_BIN).replaceAll('\\', '/')}`).href)};\n`;
  const outpost = toWindowsPath(OUTPOST_BIN);
  const win = toWindowsPath;
  const label = (t: TestContext) => t.name.replace(/^wine tier: /, '').split(':')[0];

  /** reg.exe as an admin would run it (not through the product): each argument list in turn, in one Windows process. */
  const registry = async (runs: readonly (readonly string[])[]): Promise<{ status: number; stdout: string; stderr: string }[]> => {
    const ascii = JSON.stringify(runs).replace(/[^\x20-\x7e]/g, (c) => `\\u${c.charCodeAt(0).toString(16).padStart(4, '0')}`);
    const result = await runWindowsNode(wine, ['-e', REG_SCRIPT], { env: { OUTPOST_TEST_REG: ascii } });
    assert.equal(result.code, 0, result.stderr);
    return JSON.parse(result.stdout);
  };

  /**
   * A storage folder with its config, an installation of A (in a folder named `installName`), B staged
   * in updates/1.1.0/, the job (old_pid set at start), and the updater's copy.
   */
  const prepare = async (t: TestContext, installName = 'Outpost Agent'): Promise<Case> => {
    const root = tempDir(t, 'outpost-wine-update-');
    const home = path.join(root, 'home');
    fs.mkdirSync(path.join(home, 'updates'), { recursive: true });
    const backend = await startBackend(t);
    const config = { ...DEFAULT_CONFIG, backend: { url: backend.url, ws_url: `${backend.url.replace(/^http/, 'ws')}/ws` } };
    fs.writeFileSync(path.join(home, 'config.json'), JSON.stringify(config, null, 2));
    const install = path.join(root, installName); // a space, as in "Program Files"
    const staged = path.join(home, 'updates', '1.1.0');
    const { a, b } = trees(entry);
    writeTree(install, a);
    writeTree(staged, b);
    const id = crypto.randomUUID();
    const updatesWin = win(path.join(home, 'updates'));
    // As handoff.ts writes it, with Windows paths (the agent builds them with path.win32).
    const job: UpdaterJob = {
      job_id: id,
      install_dir: win(install),
      staged_dir: win(staged),
      backup_dir: `${win(install)}.outpost-backup`,
      old_pid: 1, // set by start()
      old_version: '1.0.0',
      new_version: '1.1.0',
      launch: { command: win(wine.nodeExe), args: [win(path.join(install, 'main.mjs'))] },
      storage: win(home),
      exit_timeout_ms: 30_000,
      health_timeout_ms: 90_000,
    };
    // handoff.ts prepareUpdater: updates/updater-<job>/ holds the executable and node_modules/<name> for
    // each native package the installation found (installation.ts: ffi-rs and its installed binding).
    const copyDir = path.join(home, 'updates', `updater-${id}`);
    const exe = path.join(copyDir, 'outpost-updater.exe');
    fs.mkdirSync(copyDir, { mode: 0o700 });
    fs.writeFileSync(exe, exeBytes, { mode: 0o700 });
    for (const [name, dir] of [
      ['ffi-rs', path.join(wine.repoRoot, 'node_modules', 'ffi-rs')],
      [WIN32_BINDING, path.join(packagesDir, WIN32_BINDING)],
    ] as const) {
      fs.cpSync(dir, path.join(copyDir, 'node_modules', name), { recursive: true, dereference: true });
    }
    return {
      home,
      install,
      staged,
      backup: `${install}.outpost-backup`,
      copyDir,
      exe,
      job,
      jobFile: path.join(home, 'updates', 'job.json'),
      journal: path.join(home, 'updates', `journal-${id}.jsonl`),
      readyFile: `${updatesWin}\\updater-${id}.ready`,
      a: treeOf(install),
      b: treeOf(staged),
      received: backend.received,
      log: () => readText(path.join(home, 'logs', 'outpost.log')),
    };
  };

  /**
   * The hand-over: the old agent (a Windows process that exits 500 ms after the updater confirms, as the
   * real one shuts down), its pid in the job, then the job's executable copy run as the agent runs it
   * (`outpost-updater.exe --job updates\job.json`) with the agent's environment: OUTPOST_INSTALL_DIR
   * reaches the agents it launches; NODE_PATH holds only the win32 binding (for the launched agents'
   * ffi-rs), never ffi-rs itself, so the updater can load ffi-rs from nowhere but beside itself.
   */
  const start = async (t: TestContext, c: Case, cwd: string) => {
    const exitedFile = path.join(c.home, 'old-agent.exited');
    const t0 = Date.now();
    const old = spawnWindowsNode(wine, [oldAgentScript, c.readyFile, win(exitedFile)]);
    t.after(() => old.kill());
    const [, pid] = await old.waitForLine(/^old agent (\d+)$/);
    timings.push(`${label(t)}: a Windows Node up in ${Date.now() - t0} ms`);
    const job = { ...c.job, old_pid: Number(pid) };
    fs.writeFileSync(c.jobFile, JSON.stringify(job, null, 2));
    const started = Date.now();
    const updater = spawnWindowsNode({ ...wine, nodeExe: c.exe }, ['--job', win(c.jobFile)], {
      cwd,
      env: { OUTPOST_INSTALL_DIR: win(c.install), NODE_PATH: win(packagesDir), WINEDEBUG: '-all,+pid,+loaddll,fixme+rstrtmgr' },
    });
    // Also stops the agents the updater launched (they inherited its harness tag).
    t.after(() => updater.kill());
    const finish = async () => {
      const done = await updater.waitForExit(180_000);
      const running = /^\[([^\]]+)\] \[info\] \[updater\] updater running/m.exec(readText(path.join(c.home, 'logs', 'outpost.log')))?.[1];
      timings.push(`${label(t)}: updater running ${running ? Date.parse(running) - started : '?'} ms after its start, exit ${done.code} after ${Date.now() - started} ms`);
      return done;
    };
    return { old, oldPid: Number(pid), oldExitedAt: () => readText(exitedFile), finish };
  };

  const steps = (c: Case) => journalLines(readJournal(c.journal));
  const entryAt = (c: Case, step: string) => Date.parse(readJournal(c.journal).steps.find((e) => `${e.step}:${e.phase}` === step)?.at ?? 'missing');
  const jsonOf = (file: string) => JSON.parse(fs.readFileSync(file, 'utf8'));
  const lockRecord = (c: Case): { pid: number; version: string } | null => {
    try {
      return jsonOf(path.join(c.home, 'agent.lock'));
    } catch {
      return null;
    }
  };
  /** The pids of the agents the updater launched, from its log ("started <node.exe> <main.mjs> (pid N)"). */
  const launchedPids = (c: Case) => [...c.log().matchAll(/\[updater\] started \S+ .*main\.mjs \(pid (\d+)\)/g)].map((m) => Number(m[1]));
  const updaterPid = (c: Case) => {
    const found = /\[updater\] updater running \(pid (\d+), (.+?)\): 1\.0\.0 -> 1\.1\.0/.exec(c.log());
    assert.ok(found, `the updater logged its start:\n${c.log()}`);
    return { pid: Number(found[1]), exe: found[2] as string };
  };
  /** Wine's trace lines of process `pid` (WINEDEBUG +pid: each line starts with pid:tid in hex), backslashes unescaped. */
  const traceOf = (stderr: string, pid: number) => {
    const prefix = `${pid.toString(16).padStart(4, '0')}:`;
    return stderr
      .split('\n')
      .filter((line) => line.startsWith(prefix))
      .map((line) => line.replaceAll('\\\\', '\\'));
  };
  /** The job's leftovers that the agent following it removes once the updater has exited (job-follower.ts). */
  const leftovers = (c: Case) => [c.copyDir, c.jobFile, path.join(c.home, 'updates', `updater-${c.job.job_id}.ready`), path.join(c.home, 'updates', `health-${c.job.job_id}.json`)].filter((f) => fs.existsSync(f));
  const queuedReports = (c: Case) =>
    readText(path.join(c.home, 'error_reports.jsonl'))
      .split('\n')
      .filter(Boolean)
      .map((line) => ErrorReport.parse(JSON.parse(line)));

  /** What a rollback must leave: A in place byte for byte, B staged as it was, nothing beside the installation; A running again. */
  const assertRolledBack = async (t: TestContext, c: Case, failedStep: 'backup' | 'swap', heldFile: string, holderPid: number, stderr: string) => {
    const expected = [
      'wait_old_exit:begin',
      'wait_old_exit:end',
      'backup:begin',
      ...(failedStep === 'swap' ? ['backup:end', 'swap:begin'] : []),
      `${failedStep}:fail`,
      ...ROLLBACK_STEPS.flatMap((s) => [`${s}:begin`, `${s}:end`]),
      'outcome:rolled_back',
    ];
    assert.deepEqual(steps(c), expected);
    assert.deepEqual(treeOf(c.install), c.a, 'the installation is A, byte for byte');
    assert.deepEqual(treeOf(c.staged), c.b, 'B is still staged as it was');
    assert.deepEqual(
      fs.readdirSync(path.dirname(c.install)).filter((name) => name.startsWith(path.basename(c.install))),
      [path.basename(c.install)],
      'no backup or failed copy beside the installation',
    );
    const last = jsonOf(path.join(c.home, 'updates', 'last-update.json'));
    assert.deepEqual([last.outcome, last.from, last.to], ['rolled_back', '1.0.0', '1.1.0']);
    assert.equal(jsonOf(path.join(c.home, 'updates', 'failed-versions.json'))['1.1.0'].count, 1);

    // The move waited for the held file (retries with backoff for 10 s), naming it, then gave up.
    const waited = entryAt(c, `${failedStep}:fail`) - entryAt(c, `${failedStep}:begin`);
    assert.ok(waited >= 10_000 && waited < 20_000, `the ${failedStep} waited ${waited} ms`);
    const retries = c.log().split('\n').filter((line) => line.includes('cannot move yet') && line.includes(win(heldFile)) && /retrying in \d+ ms/.test(line));
    assert.ok(retries.length >= 3, `retried several times:\n${c.log()}`);

    // The report the relaunched A sends: ERR_UPDATE_SWAP, naming the file and its holder, or saying the
    // Restart Manager named none (Wine 8's is a stub; Windows names the holding process and its pid).
    const reports = queuedReports(c);
    assert.equal(reports.length, 1, JSON.stringify(reports));
    const [report] = reports as [ErrorReport];
    assert.equal(report.code, 'ERR_UPDATE_SWAP');
    assert.equal(report.context.failed_step, failedStep);
    assert.ok(report.message.includes(`${win(heldFile)} is held open`), report.message);
    const named = report.message.includes(`pid ${holderPid}`);
    assert.ok(named || report.message.includes('(the holder is unknown: Restart Manager named none)'), report.message);
    t.diagnostic(`${failedStep}: the report says: ${report.message}`);

    // The Restart Manager was asked through ffi-rs, loaded from the node_modules beside the executable.
    const updater = updaterPid(c);
    const trace = traceOf(stderr, updater.pid);
    const binding = `${win(c.copyDir)}\\node_modules\\${WIN32_BINDING.replace('/', '\\')}\\ffi-rs.win32-x64-msvc.node`;
    assert.ok(
      trace.some((line) => line.includes('trace:loaddll') && line.includes(`Loaded L"${binding}"`)),
      `the updater (pid ${updater.pid}) loaded ${binding}:\n${trace.filter((l) => l.includes('loaddll')).join('\n')}`,
    );
    assert.ok(trace.some((line) => line.includes('rstrtmgr.dll')), 'the updater loaded rstrtmgr.dll');
    assert.ok(
      trace.some((line) => line.includes('fixme:rstrtmgr:RmGetList')),
      `the updater called RmGetList:\n${trace.filter((l) => l.includes('rstrtmgr')).join('\n')}`,
    );

    // A runs again: launched once (relaunch_old), it holds the lock as 1.0.0 and sends the queued report.
    const [relaunched, ...more] = launchedPids(c);
    assert.ok(relaunched && more.length === 0, `one launch: ${launchedPids(c)}`);
    await until('A holding the lock', () => lockRecord(c)?.pid === relaunched && lockRecord(c)?.version === '1.0.0', 60_000, () => JSON.stringify(lockRecord(c)));
    const sent = await until('the report at the backend', () => c.received.find((r) => r.report.id === report.id), 60_000);
    assert.equal(sent.agent, 'Outpost/1.0.0', 'sent by the relaunched 1.0.0');
    await until('the job cleaned up by A', () => leftovers(c).length === 0, 30_000, () => leftovers(c).join(', '));
  };

  await t.test('wine tier: success: the updater, started from inside the installation, swaps A for B byte for byte, launches B, sees it healthy and commits', async (t) => {
    // A user name with an accent, as in C:\Users\Jürgen\AppData\Local\Programs (reg query would print it in the OEM code page).
    const c = await prepare(t, 'Outpost Agent Jürgen');

    // Apps & features: the installer's entries, in HKCU and HKLM, under key names of this test's own (the
    // prefix is shared, and the installer tests write `Outpost` for their own folders at the same time):
    // the updater knows its entries by their InstallLocation, not by their names. Inno Setup writes a
    // trailing backslash. An entry of another folder must stay as it is.
    const entry = (hive: string, suffix = '') => `${hive}\\${UNINSTALL_KEY}\\OutpostWineUpdater-${c.job.job_id}${suffix}`;
    const keys = [entry('HKCU'), entry('HKLM'), entry('HKCU', '-other')];
    t.after(() => registry(keys.map((key) => ['delete', key, '/f'])));
    const entryOf = (key: string, location: string) => [
      ['add', key, '/v', 'DisplayName', '/t', 'REG_SZ', '/d', 'Outpost', '/f'],
      ['add', key, '/v', 'DisplayVersion', '/t', 'REG_SZ', '/d', '1.0.0', '/f'],
      ['add', key, '/v', 'InstallLocation', '/t', 'REG_SZ', '/d', location, '/f'],
      ['add', key, '/v', 'EstimatedSize', '/t', 'REG_DWORD', '/d', '1', '/f'],
    ];
    const written = await registry([...entryOf(entry('HKCU'), win(c.install)), ...entryOf(entry('HKLM'), `${win(c.install)}\\`), ...entryOf(entry('HKCU', '-other'), `${win(c.install)} 2`)]);
    assert.deepEqual(written.map((r) => r.status), written.map(() => 0), JSON.stringify(written));
    const installedEntries = async () =>
      (await registry(keys.map((key) => ['query', key]))).map((r) => {
        assert.equal(r.status, 0, r.stderr);
        return [/^\s+DisplayVersion\s+REG_SZ\s+(.*?)\r?$/m.exec(r.stdout)?.[1], Number(/^\s+EstimatedSize\s+REG_DWORD\s+(0x[0-9a-f]+)/m.exec(r.stdout)?.[1])];
      });
    assert.deepEqual(await installedEntries(), [['1.0.0', 1], ['1.0.0', 1], ['1.0.0', 1]]);

    // An agent started from its own folder (a shortcut's "Start in", an installer's "run now") passes
    // that working folder on to the updater. Windows, and Wine too, refuse to rename a process's working
    // folder (EBUSY, which no held-file probe explains): the updater moves to its storage folder first.
    const run = await start(t, c, c.install);
    const done = await run.finish();
    assert.equal(done.code, 0, `${done.stderr.split('\n').filter((l) => !/^[0-9a-f]{4}:/.test(l)).join('\n')}\n${c.log()}`);

    assert.deepEqual(treeOf(c.install), c.b, 'the installation is B, byte for byte');
    assert.equal(fs.existsSync(c.backup), false, 'the backup is gone');
    assert.equal(fs.existsSync(c.staged), false, 'the staged copy is gone (moved into place)');
    assert.deepEqual(steps(c), [...FORWARD_STEPS.flatMap((s) => [`${s}:begin`, `${s}:end`]), 'outcome:committed']);
    const last = jsonOf(path.join(c.home, 'updates', 'last-update.json'));
    assert.deepEqual([last.job_id, last.outcome, last.from, last.to, last.reason], [c.job.job_id, 'committed', '1.0.0', '1.1.0', null]);
    assert.deepEqual(queuedReports(c), [], 'no error report queued');

    // It waited for the old agent, a live Windows process (process.kill(pid, 0) under Wine).
    assert.ok(run.oldExitedAt(), 'the old agent exited');
    const exited = Date.parse(run.oldExitedAt());
    assert.ok(entryAt(c, 'wait_old_exit:begin') <= exited && exited <= entryAt(c, 'wait_old_exit:end'), 'the updater saw the old agent alive, and waited until it exited');
    assert.equal((await run.old.waitForExit(10_000)).code, 0);

    // It ran from its copy beside the job, as a release runs it.
    assert.equal(updaterPid(c).exe.toLowerCase(), win(c.exe).toLowerCase());

    // B: launched by the updater, proved itself with the health record, and runs (status over its named pipe).
    const launched = Number(readJournal(c.journal).steps.find((e) => e.step === 'launch' && e.phase === 'end')?.detail?.pid);
    assert.deepEqual(launchedPids(c), [launched]);
    timings.push(`success: B from launch to healthy in ${entryAt(c, 'health:end') - entryAt(c, 'launch:end')} ms`);
    assert.match(c.log(), new RegExp(`told the updater that 1\\.1\\.0 is healthy \\(job ${c.job.job_id}\\)`));
    const status = await runWindowsNode(wine, [outpost, 'status'], { env: { OUTPOST_HOME: win(c.home), OUTPOST_INSTALL_DIR: win(c.install) } });
    assert.equal(status.code, 0, status.stderr);
    const seen = JSON.parse(status.stdout);
    assert.deepEqual([seen.version, seen.state, seen.pid], ['1.1.0', 'IDLE', launched]);
    assert.deepEqual([lockRecord(c)?.pid, lockRecord(c)?.version], [launched, '1.1.0']);

    // B follows the job to its end: reports the success, removes the updater's copy (the exe, now that it exited) and the job's files.
    const success = await until('the success report at the backend', () => c.received.find((r) => r.report.code === 'EVT_UPDATE_SUCCEEDED'), 60_000);
    assert.equal(success.agent, 'Outpost/1.1.0');
    await until('the job cleaned up by B', () => leftovers(c).length === 0, 30_000, () => `${leftovers(c).join(', ')}\n${c.log()}`);
    assert.doesNotMatch(c.log(), /could not remove/);

    // Apps & features shows B: its version and size in both entries of this folder, told by the updater
    // before the job's outcome (a crash in between leaves the job to a recovery, which tells it again).
    const sizeKb = folderSizeKb(c.install);
    assert.ok(sizeKb !== null && sizeKb > 128, `B's size: ${sizeKb} KB`);
    assert.deepEqual(await installedEntries(), [['1.1.0', sizeKb], ['1.1.0', sizeKb], ['1.0.0', 1]], 'the entries of this folder show B; the other is untouched');
    const outcomeAt = Date.parse(readJournal(c.journal).outcome?.at ?? 'missing');
    for (const key of keys.slice(0, 2)) {
      const line = `[updater] Apps & features: ${key} DisplayVersion 1.0.0 -> 1.1.0`;
      const logged = c.log().split('\n').find((l) => l.trimEnd().endsWith(` [info] ${line}`));
      const at = logged && /^\[([^\]]+)\]/.exec(logged)?.[1];
      assert.ok(at, `logged: ${line}\n${c.log()}`);
      assert.ok(Date.parse(at) >= entryAt(c, 'commit:end') && Date.parse(at) <= outcomeAt, `${line} at ${at}: after the commit, before the outcome`);
    }
    assert.doesNotMatch(c.log(), /Apps & features: .*(Cannot|could not)/);
  });

  /** A file (picked from the case) held open by another Windows process while the updater runs: the move at `failedStep` gives up and the job rolls back. */
  const whileHeld = async (t: TestContext, pick: (c: Case) => string, failedStep: 'backup' | 'swap') => {
    const c = await prepare(t);
    const heldFile = pick(c);
    const holder = spawnWindowsNode(wine, [holdScript, win(heldFile)]);
    t.after(() => holder.kill());
    const [, holderPid] = await holder.waitForLine(/^holding (\d+)$/);
    const run = await start(t, c, c.home);
    const done = await run.finish();
    assert.equal(done.code, ExitCode.UPDATE_ROLLED_BACK, c.log());
    await assertRolledBack(t, c, failedStep, heldFile, Number(holderPid), done.stderr);
  };

  await t.test('wine tier: a file of the installation held open by another Windows process: the backup waits, gives up, A stays byte for byte and runs again, the report names the file', (t) =>
    whileHeld(t, (c) => path.join(c.install, 'lib', 'nested', 'deep', 'data.bin'), 'backup'),
  );

  await t.test('wine tier: a process working in the installation folder (no file held): the backup waits, gives up, and the report says a folder is held', async (t) => {
    const c = await prepare(t);
    // Windows (and Wine) refuse to rename a folder that is some process's working folder; no file is open.
    const worker = spawnWindowsNode(wine, ['-e', "console.log('working ' + process.pid); setInterval(() => {}, 1 << 30);"], { cwd: c.install });
    t.after(() => worker.kill());
    await worker.waitForLine(/^working (\d+)$/);
    const run = await start(t, c, c.home);
    const done = await run.finish();
    assert.equal(done.code, ExitCode.UPDATE_ROLLED_BACK, c.log());
    assert.ok(steps(c).includes('backup:fail') && steps(c).includes('outcome:rolled_back'), steps(c).join(' '));
    assert.deepEqual(treeOf(c.install), c.a, 'the installation is A, byte for byte');
    const [report, ...more] = queuedReports(c);
    assert.equal(more.length, 0);
    assert.equal(report?.code, 'ERR_UPDATE_SWAP');
    assert.match(report?.message ?? '', /no file in it is held open, so a folder is: a process working in it/);
  });

  await t.test('wine tier: a file of the staged tree held open: the backup is made, the swap waits and gives up, the backup is restored byte for byte', (t) =>
    whileHeld(t, (c) => path.join(c.staged, 'added', 'in-b', 'new.txt'), 'swap'),
  );
});
