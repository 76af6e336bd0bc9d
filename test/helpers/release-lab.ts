import { type SpawnSyncReturns, spawnSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { chunkBuffer } from '../../app/base/chunking.js';
import type { ErrorReport } from '../../app/common/reports.js';
import { DEFAULT_CONFIG } from '../../app/main/core/config-schema.js';
import type { UpdatePaths } from '../../app/base/storage-layout.js';
import { StateMachine } from '../../app/main/core/state-machine.js';
import { Feed } from '../../app/main/core/update/feed.js';
import { UpdatePipeline } from '../../app/main/core/update/update-pipeline.js';
import axios from 'axios';
import { compressFrame } from '../../tools/release/object-store.js';
import { DEFAULT_CHUNKING } from '../../tools/release/release-writer.js';
import { memoryLogger } from './memory-logger.js';
import { REPO_ROOT, tempDir } from './paths.js';
import { Child } from './processes.js';

const RELEASE_BIN = path.join(REPO_ROOT, 'bin', 'outpost-release.js');
const SERVER_BIN = path.join(REPO_ROOT, 'bin', 'outpost-server.js');

export type AppFiles = Readonly<Record<string, string | Buffer>>;

/**
 * A release manager's desk for tests, with the real tools: signing keys (`outpost-release keygen`),
 * a feed, application folders to publish, the reference server (`outpost-server`) on loopback, and
 * agent homes configured to follow it.
 */
export class ReleaseLab {
  readonly root: string;
  readonly keys: string;
  readonly feed: string;
  #server: Child | undefined;
  #port = 0;

  constructor(t: { after: (fn: () => void | Promise<void>) => void }) {
    this.root = tempDir(t, 'outpost-lab-');
    this.keys = path.join(this.root, 'keys');
    this.feed = path.join(this.root, 'feed');
    release(['keygen', '--out', this.keys]);
    t.after(() => this.stopServer());
  }

  /** Writes an application folder: `package.json` with the version, plus the given files. */
  app(version: string, files: AppFiles): string {
    const dir = path.join(this.root, `app-${version}-${Math.random().toString(36).slice(2, 8)}`);
    for (const [name, content] of Object.entries({ 'package.json': JSON.stringify({ name: 'outpost-test-app', version }), ...files })) {
      fs.mkdirSync(path.dirname(path.join(dir, name)), { recursive: true });
      fs.writeFileSync(path.join(dir, name), content);
    }
    return dir;
  }

  /** `outpost-release publish`; throws with its stderr if it fails. */
  publish(appDir: string, version: string, extra: readonly string[] = []): string {
    return release(['publish', '--app', appDir, '--version', version, '--key', this.keys, '--feed', this.feed, ...extra]);
  }

  release(args: readonly string[]): string {
    return release(args);
  }

  /** Starts `outpost-server` on this feed (on `port`, or a free one), with `extra` arguments. */
  async startServer(port = 0, extra: readonly string[] = []): Promise<string> {
    const server = new Child(process.execPath, [SERVER_BIN, '--feed', this.feed, '--port', String(port), '--reports', this.reportsFile, ...extra], { ...process.env });
    const [, actual] = await server.waitFor(/listening on http:\/\/127\.0\.0\.1:(\d+)/);
    this.#server = server;
    this.#port = Number(actual);
    return this.url;
  }

  async stopServer(): Promise<void> {
    const server = this.#server;
    this.#server = undefined;
    if (!server) return;
    server.kill('SIGTERM');
    await server.finish();
  }

  get url(): string {
    return `http://127.0.0.1:${this.#port}`;
  }

  get port(): number {
    return this.#port;
  }

  get reportsFile(): string {
    return path.join(this.root, 'reports.jsonl');
  }

  /** The reports the server stored (each line: `{ received_at, report }`). */
  reports(): ErrorReport[] {
    if (!fs.existsSync(this.reportsFile)) return [];
    return fs
      .readFileSync(this.reportsFile, 'utf8')
      .split('\n')
      .filter(Boolean)
      .map((line) => (JSON.parse(line) as { report: ErrorReport }).report);
  }

  /**
   * The agent's side of the feed, on its own: TUF verification of what `url` (the lab's server, or a
   * proxy in front of it) serves, trusting `trustedRootFile` (the keys folder's root.json), with its
   * metadata cache in `cacheDir` (a fresh one if not given).
   */
  agentFeed(options: { url?: string; trustedRootFile?: string; cacheDir?: string } = {}): Feed {
    return new Feed({
      baseUrl: new URL('feed/', `${options.url ?? this.url}/`).toString(),
      cacheDir: options.cacheDir ?? fs.mkdtempSync(path.join(this.root, 'agent-cache-')),
      trustedRootFile: options.trustedRootFile ?? path.join(this.keys, 'root.json'),
      http: axios.create(),
      timeoutMs: 10_000,
      log: memoryLogger(),
    });
  }

  /**
   * The agent's update pipeline on its own (no agent process): installed as `running` in
   * `installDir`, its files in `updates` (made here), following `url` (the lab's server, or a proxy in
   * front of it), with its state machine in CHECKING_UPDATE, as a check begins. The signal is never
   * aborted: only the state machine may stop a check.
   */
  pipeline(options: { updates: UpdatePaths; installDir: string; running: string; url?: string }) {
    const { updates } = options;
    fs.mkdirSync(updates.dir, { recursive: true });
    const log = memoryLogger();
    const state = new StateMachine(log, () => new Date());
    state.setState('IDLE', 'test');
    state.setState('CHECKING_UPDATE', 'test');
    const pipeline = new UpdatePipeline({
      state,
      log,
      updates,
      settings: DEFAULT_CONFIG.update,
      feed: this.agentFeed({ ...(options.url && { url: options.url }), cacheDir: updates.metadata }),
      running: options.running,
      installDir: options.installDir,
      agentId: '00000000-0000-4000-8000-000000000000',
      http: axios.create(),
      now: () => new Date(),
      signal: new AbortController().signal,
    });
    return { pipeline, state, log };
  }

  /**
   * An agent home following this lab: config.json with the backend, the trusted root and a poll
   * interval; `installed` is the folder the agent runs as (OUTPOST_INSTALL_DIR). The pipeline stops
   * at the staged version (update.hand_off off) unless `update` turns the hand-off on. It is made in
   * `parent` when given (the caller removes it), else in the lab.
   */
  home(options: { url?: string; wsUrl?: string; pollS?: number; trustFile?: string; update?: Record<string, unknown>; backend?: Record<string, unknown>; parent?: string } = {}): string {
    const home = path.join(options.parent ?? this.root, `home-${Math.random().toString(36).slice(2, 8)}`);
    fs.mkdirSync(home, { mode: 0o700 });
    const url = options.url ?? this.url;
    const config = {
      ...DEFAULT_CONFIG,
      backend: { ...DEFAULT_CONFIG.backend, url, ws_url: options.wsUrl ?? `${url.replace(/^http/, 'ws')}/ws`, ...options.backend },
      update: { ...DEFAULT_CONFIG.update, hand_off: false, poll_interval_s: options.pollS ?? 3600, trust_file: options.trustFile ?? path.join(this.keys, 'root.json'), ...options.update },
    };
    fs.writeFileSync(path.join(home, 'config.json'), JSON.stringify(config, null, 2));
    return home;
  }
}

/** `outpost-release` with these arguments, run to its end, whatever its exit code. */
export function runReleaseTool(args: readonly string[]): SpawnSyncReturns<string> {
  return spawnSync(process.execPath, [RELEASE_BIN, ...args], { encoding: 'utf8' });
}

function release(args: readonly string[]): string {
  const result = runReleaseTool(args);
  if (result.status !== 0) throw new Error(`outpost-release ${args.join(' ')} exited ${result.status}: ${result.stderr}`);
  return result.stdout;
}

/** Every regular file under `dir`, relative path -> bytes (to compare trees byte for byte). */
/**
 * Where the release tool puts each chunk of `bytes` in the file's object: the frame it compresses
 * (the same whichever release first compressed it), one after another from offset 0.
 */
export function framesOf(bytes: Buffer): Array<{ sha256: string; size: number; stored: number; offset: number }> {
  let offset = 0;
  return chunkBuffer(bytes, DEFAULT_CHUNKING).map(({ sha256, size, offset: at }) => {
    const stored = compressFrame(bytes.subarray(at, at + size)).length;
    offset += stored;
    return { sha256, size, stored, offset: offset - stored };
  });
}

export function treeOf(dir: string): Record<string, string> {
  const out: Record<string, string> = {};
  const walk = (d: string) => {
    for (const entry of fs.readdirSync(d, { withFileTypes: true })) {
      const p = path.join(d, entry.name);
      if (entry.isDirectory()) walk(p);
      else out[path.relative(dir, p).split(path.sep).join('/')] = fs.readFileSync(p).toString('base64');
    }
  };
  walk(dir);
  return out;
}
