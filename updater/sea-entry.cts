/**
 * The SEA pipeline's stand-in main: one self-contained CommonJS script that tools/sea/build-updater.ts
 * embeds into the `outpost-updater` single executables until a bundler turns dist/updater/main.js
 * (ESM, importing app modules, zod and electron-log) into one CommonJS file. A Node 24 SEA runs exactly
 * one CommonJS script, and its `require` loads built-in modules only, so this file imports nothing else.
 *
 * Same contract as updater/main.ts where it overlaps: `--version` prints `outpost-updater <node
 * version>` and exits 0, bad arguments print the usage and exit 64. `--job` exits 69 (this build
 * cannot run jobs). `--sea-self-test [DIR]` prints one JSON line (SeaSelfTest) and exits 0 when every
 * check passed, 1 otherwise.
 */
import fs = require('node:fs');
import os = require('node:os');
import path = require('node:path');
import sea = require('node:sea');

const USAGE = 'usage: outpost-updater --job FILE | --version | --sea-self-test [DIR]';

/** What `--sea-self-test` prints (one JSON line). */
export interface SeaSelfTest {
  /** node:sea says this script was injected into the executable. */
  isSea: boolean;
  execPath: string;
  node: string;
  platform: string;
  arch: string;
  /** The arguments after the executable's own name. */
  args: string[];
  /** `require` of a non-built-in fails with ERR_UNKNOWN_BUILTIN_MODULE, as only inside a SEA. */
  builtinOnlyRequire: boolean;
  /** A file written, renamed over an existing one, read back and removed in a fresh temp folder. */
  fsWriteRename: boolean;
  /** The temp folder used (already removed). */
  tempDir: string;
  /** What failed, empty when everything passed. */
  problems: string[];
}

function selfTest(args: string[], parent: string): SeaSelfTest {
  const problems: string[] = [];
  let builtinOnlyRequire = false;
  try {
    require('./outpost-sea-self-test-not-a-builtin');
    problems.push('require of a relative path did not throw');
  } catch (error) {
    builtinOnlyRequire = (error as NodeJS.ErrnoException).code === 'ERR_UNKNOWN_BUILTIN_MODULE';
    if (!builtinOnlyRequire) problems.push(`require of a relative path threw ${(error as NodeJS.ErrnoException).code ?? error}`);
  }
  let fsWriteRename = false;
  let tempDir = '';
  try {
    tempDir = fs.mkdtempSync(path.join(parent, 'outpost-sea-self-test-'));
    const target = path.join(tempDir, 'target');
    const staged = path.join(tempDir, 'target.new');
    fs.writeFileSync(target, 'old');
    fs.writeFileSync(staged, `new ${process.pid}`);
    fs.renameSync(staged, target);
    const content = fs.readFileSync(target, 'utf8');
    const left = fs.readdirSync(tempDir);
    fsWriteRename = content === `new ${process.pid}` && left.length === 1 && left[0] === 'target';
    if (!fsWriteRename) problems.push(`after the rename: content ${JSON.stringify(content)}, files ${JSON.stringify(left)}`);
  } catch (error) {
    problems.push(`fs: ${error instanceof Error ? error.message : String(error)}`);
  } finally {
    if (tempDir) fs.rmSync(tempDir, { recursive: true, force: true });
  }
  const isSea = sea.isSea();
  if (!isSea) problems.push('node:sea isSea() is false');
  return {
    isSea,
    execPath: process.execPath,
    node: process.versions.node,
    platform: process.platform,
    arch: process.arch,
    args,
    builtinOnlyRequire,
    fsWriteRename,
    tempDir,
    problems,
  };
}

function run(argv: string[]): number {
  if (argv[0] === '--version') {
    process.stdout.write(`outpost-updater ${process.versions.node}\n`);
    return 0;
  }
  if (argv[0] === '--sea-self-test' && argv.length <= 2) {
    const result = selfTest(argv, argv[1] ?? os.tmpdir());
    process.stdout.write(`${JSON.stringify(result)}\n`);
    return result.problems.length === 0 ? 0 : 1;
  }
  if (argv[0] === '--job' && argv[1] && argv.length === 2) {
    process.stderr.write('outpost-updater: this executable is the SEA pipeline stand-in (updater/sea-entry.cts) and cannot run jobs\n');
    return 69;
  }
  process.stderr.write(`outpost-updater: ${USAGE}\n`);
  return 64;
}

// In a SEA, process.argv is [execPath, argv0 as typed, ...arguments].
process.exitCode = run(process.argv.slice(2));
