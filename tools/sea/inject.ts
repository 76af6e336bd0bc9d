/**
 * Steps 1 to 3 of the build (see build-updater.ts): the SEA blob, made by the pinned Node; postject,
 * injecting it into a copy of a Node binary; the checks of the result (the fuse; on Linux, a run).
 */
import fs from 'node:fs';
import path from 'node:path';
import { packageVersion } from '../build/package-json.js';
import { exists } from './files.js';
import { runToCompletion } from './run.js';
import { SeaBuildError } from './sea-build-error.js';

/** Node's SEA resource name and sentinel fuse (fixed by Node; see doc/api/single-executable-applications.md). */
export const SEA_RESOURCE = 'NODE_SEA_BLOB';
export const SEA_FUSE = 'NODE_SEA_FUSE_fce680ab2cc467b6e072b8b5df1996b2';

/** postject's API script and version (part of the cache key). */
export function postjectVersion(repoRoot: string): { api: string; version: string } {
  const dir = path.join(repoRoot, 'node_modules', 'postject');
  const version = packageVersion(dir);
  if (!version) throw new SeaBuildError(`${dir} is missing: run npm install (devDependency postject)`);
  return { api: path.join(dir, 'dist', 'api.js'), version };
}

/** LIEF's harmless complaints about node's many ELF note sections. */
function quiet(stderr: string): string {
  return stderr
    .split('\n')
    .filter((line) => line && !line.startsWith("warning: Can't find string offset for section name"))
    .join('\n');
}

/** Step 1: the blob, made by the pinned Node from workDir/`main`, named so that the blob records no checkout's path. */
export async function makeBlob(node: string, workDir: string, main = 'outpost-updater.cjs'): Promise<Buffer> {
  const config = { main, output: 'sea-prep.blob', disableExperimentalSEAWarning: true, useCodeCache: false, useSnapshot: false };
  fs.writeFileSync(path.join(workDir, 'sea-config.json'), `${JSON.stringify(config, null, 2)}\n`);
  const made = await runToCompletion(node, ['--experimental-sea-config', 'sea-config.json'], { cwd: workDir, timeoutMs: 120_000 });
  const blob = path.join(workDir, 'sea-prep.blob');
  if (made.code !== 0 || !exists(blob)) {
    throw new SeaBuildError(`${node} --experimental-sea-config failed (exit ${made.code ?? made.signal}):\n${made.stderr}${made.stdout}`);
  }
  return fs.readFileSync(blob);
}

/** postject in a child process: its Emscripten module installs process-wide exception handlers. */
export async function inject(node: string, postjectApi: string, exe: string, blobFile: string): Promise<void> {
  const script = `
    const { inject } = require(${JSON.stringify(postjectApi)});
    const data = require('node:fs').readFileSync(${JSON.stringify(blobFile)});
    inject(${JSON.stringify(exe)}, ${JSON.stringify(SEA_RESOURCE)}, data, { sentinelFuse: ${JSON.stringify(SEA_FUSE)}, overwrite: false })
      .then(() => process.stdout.write('injected\\n'), (error) => { process.stderr.write('postject: ' + error.message + '\\n'); process.exitCode = 1; });`;
  const done = await runToCompletion(node, ['-e', script], { timeoutMs: 600_000 });
  if (done.code !== 0 || !done.stdout.includes('injected')) {
    throw new SeaBuildError(`postject could not inject the blob into ${exe} (exit ${done.code ?? done.signal}):\n${quiet(done.stderr)}`);
  }
}

/** Checks the injected executable: Node flips the fuse ":0" to ":1", and it must occur exactly once. */
export function checkFuse(data: Buffer, file: string): void {
  const on = Buffer.from(`${SEA_FUSE}:1`, 'latin1');
  const at = data.indexOf(on);
  if (at < 0 || data.indexOf(on, at + 1) >= 0 || data.indexOf(Buffer.from(`${SEA_FUSE}:0`, 'latin1')) >= 0) {
    throw new SeaBuildError(`${file}: the SEA fuse is not set exactly once after injection`);
  }
}

/** Runs the Linux executable (where this is Linux x64): `--version` must name the application's version and the Node it runs on. */
export async function smokeTestLinux(exe: string, appVersion: string, nodeVersion: string): Promise<void> {
  if (process.platform !== 'linux' || process.arch !== 'x64') return;
  const ran = await runToCompletion(exe, ['--version'], { timeoutMs: 30_000 });
  const expected = `outpost-updater ${appVersion} (Node ${nodeVersion})`;
  if (ran.code !== 0 || ran.stdout !== `${expected}\n`) {
    throw new SeaBuildError(`${exe} --version: exit ${ran.code ?? ran.signal}, stdout ${JSON.stringify(ran.stdout)}, stderr ${JSON.stringify(ran.stderr)} (expected "${expected}")`);
  }
}
