/**
 * The story's temporary folder, laid out: the release manager's keys and feed, the application folders
 * of each version, the installation, and the agent's home with its configuration.
 */
import crypto from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { DEFAULT_CONFIG } from '../app/main/core/config-schema.js';
import { readText } from '../app/base/durable-file.js';

export const REPO_ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..');
export const OUTPOST = path.join(REPO_ROOT, 'bin', 'outpost.js');
export const RELEASE = path.join(REPO_ROOT, 'bin', 'outpost-release.js');
export const SERVER = path.join(REPO_ROOT, 'bin', 'outpost-server.js');

export const MiB = 1024 * 1024;

export class Lab {
  readonly work: string;
  readonly keys: string;
  readonly feed: string;
  readonly install: string;
  readonly home: string;

  constructor(work: string) {
    this.work = work;
    this.keys = path.join(work, 'keys');
    this.feed = path.join(work, 'feed');
    this.install = path.join(work, 'install');
    this.home = path.join(work, 'home');
  }

  /** Paths in what is shown are relative to the temporary folder. */
  short(text: string): string {
    return text
      .split(`${this.work}${path.sep}`)
      .join('')
      .split(this.work)
      .join('.')
      .split(process.execPath)
      .join('node')
      .replace(/\b([0-9a-f]{8})-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}\b/g, '$1…');
  }

  /** The agent's log so far ('' before it has one). */
  log(): string {
    return readText(path.join(this.home, 'logs', 'outpost.log'));
  }

  /**
   * An application folder: package.json, main.mjs (imports this checkout's bin/outpost.js, so that
   * the launch command runs whatever is installed), README, and payload: 4 MiB that B keeps and a
   * 1.5 MiB engine.bin into which B inserts 64 KiB (random bytes: incompressible, so what is
   * downloaded is plain to see: the chunks around the insertion, not the file).
   */
  writeApp(version: string, previous?: string): string {
    const dir = path.join(this.work, 'apps', version);
    fs.mkdirSync(path.join(dir, 'payload'), { recursive: true });
    fs.writeFileSync(path.join(dir, 'package.json'), `${JSON.stringify({ name: 'outpost-demo-app', version, type: 'module', main: 'main.mjs' }, null, 2)}\n`);
    fs.writeFileSync(path.join(dir, 'main.mjs'), `// The installed entry point: starts the agent.\nimport ${JSON.stringify(pathToFileURL(OUTPOST).href)};\n`);
    fs.writeFileSync(path.join(dir, 'README.txt'), `Outpost demo application, version ${version}.\n`);
    for (let i = 0; i < 4; i++) {
      const file = path.join('payload', `assets-${i}.bin`);
      if (previous) fs.copyFileSync(path.join(previous, file), path.join(dir, file));
      else fs.writeFileSync(path.join(dir, file), crypto.randomBytes(MiB));
    }
    const engine = path.join('payload', 'engine.bin');
    if (previous) {
      const before = fs.readFileSync(path.join(previous, engine));
      fs.writeFileSync(path.join(dir, engine), Buffer.concat([before.subarray(0, 0.75 * MiB), crypto.randomBytes(64 * 1024), before.subarray(0.75 * MiB)]));
    } else fs.writeFileSync(path.join(dir, engine), crypto.randomBytes(1.5 * MiB));
    return dir;
  }

  /** The agent's home: a config.json naming the server at `serverUrl` and the feed's root of trust, with the hand-off to the updater on. */
  writeHome(serverUrl: string): void {
    fs.mkdirSync(this.home, { mode: 0o700 });
    const ws = `${serverUrl.replace(/^http/, 'ws')}/ws`;
    const config = {
      ...DEFAULT_CONFIG,
      backend: { url: serverUrl, ws_url: ws },
      update: { ...DEFAULT_CONFIG.update, hand_off: true, poll_interval_s: 3600, trust_file: path.join(this.keys, 'root.json') },
    };
    fs.writeFileSync(path.join(this.home, 'config.json'), JSON.stringify(config, null, 2));
  }

  /** The environment of the agent (and of `outpost status`): this home and installation, the updater executable if any, no test switches. */
  agentEnv(updater: { executable: string } | null): NodeJS.ProcessEnv {
    const env: NodeJS.ProcessEnv = { ...process.env, OUTPOST_HOME: this.home, OUTPOST_INSTALL_DIR: this.install };
    for (const name of ['OUTPOST_LOG_LEVEL', 'OUTPOST_UPDATER_EXE', 'OUTPOST_UPDATER_TEST_CRASH_AT', 'OUTPOST_TEST_HOLD_STATE']) delete env[name];
    if (updater) env.OUTPOST_UPDATER_EXE = updater.executable;
    return env;
  }
}
