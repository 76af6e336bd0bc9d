import { type ChildProcess, fork } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { monitorEventLoopDelay } from 'node:perf_hooks';
import { FeedServer } from '../server/server.js';
import { bareServer } from './server-fanout.js';
import { describeError } from '../app/base/errors.js';

/**
 * A push server of the fleet benchmark (fleet.ts) in a process of its own, as in production: an
 * outpost-server node (FeedServer, learning of publishes from Redis), or the baseline, a bare `ws`
 * server that broadcasts when told to over IPC. Both run with --expose-gc, so that their memory is
 * read after a full collection.
 */
export type ServerKind =
  | {
      readonly kind: 'node';
      readonly redisUrl: string;
      readonly maxConnections: number;
      /** The node's (empty) feed folder and reports file go here; the benchmark deletes it. */
      readonly dir: string;
    }
  | { readonly kind: 'bare' };

export interface Memory {
  readonly rssBytes: number;
  readonly heapUsedBytes: number;
}

type ToServer = { type: 'memory' } | { type: 'loop-delay' } | { type: 'broadcast'; text: string };
type FromServer =
  | { type: 'ready'; port: number }
  | { type: 'memory'; memory: Memory }
  | { type: 'loop-delay'; maxMs: number }
  | { type: 'sent'; at: string }
  | { type: 'failed'; error: string };

const START_TIMEOUT_MS = 15_000;
/** The event loop's delay is sampled this often: finer would cost the server more than it tells. */
const LOOP_DELAY_RESOLUTION_MS = 10;

export class ServerProcess {
  readonly #child: ChildProcess;
  readonly pid: number;
  /** Where agents connect. */
  readonly wsUrl: string;
  readonly httpUrl: string;
  readonly #sentAt: bigint[] = [];
  #onAnswer: ((message: FromServer) => void) | undefined;

  private constructor(child: ChildProcess, port: number, kind: ServerKind['kind']) {
    this.#child = child;
    this.pid = child.pid ?? 0;
    this.httpUrl = `http://127.0.0.1:${port}`;
    this.wsUrl = `ws://127.0.0.1:${port}${kind === 'node' ? '/ws' : '/'}`;
    child.on('message', (message: FromServer) => {
      if (message.type === 'sent') this.#sentAt.push(BigInt(message.at));
      else this.#onAnswer?.(message);
    });
  }

  /**
   * Starts the server; a node is ready once it has subscribed to Redis (a publish before that would
   * go unheard). Its log is not shown: the failures that matter show in the figures (an agent
   * refused counts as a failed attempt, a publish unheard fails its round).
   */
  static start(kind: ServerKind): Promise<ServerProcess> {
    const child = fork(import.meta.filename, ['--server', JSON.stringify(kind)], { execArgv: [...process.execArgv, '--expose-gc'], stdio: ['ignore', 'inherit', 'inherit', 'ipc'] });
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        child.kill('SIGKILL');
        reject(new Error(`the ${kind.kind} server did not start within ${START_TIMEOUT_MS} ms`));
      }, START_TIMEOUT_MS);
      child.once('message', (message: FromServer) => {
        clearTimeout(timer);
        if (message.type === 'ready') resolve(new ServerProcess(child, message.port, kind.kind));
        else reject(new Error(`the ${kind.kind} server failed to start: ${message.type === 'failed' ? message.error : message.type}`));
      });
      child.once('exit', (code, signal) => {
        clearTimeout(timer);
        reject(new Error(`the ${kind.kind} server exited (${code ?? signal}) before it was ready`));
      });
    });
  }

  /** hrtimes at which the server had handed each broadcast to every socket (its last send returned), in order. */
  get sentAt(): readonly bigint[] {
    return this.#sentAt;
  }

  /** RSS and JS heap after a full garbage collection. */
  async memory(): Promise<Memory> {
    const answer = await this.#ask({ type: 'memory' });
    if (answer.type !== 'memory') throw new Error(`the server answered ${answer.type} to memory`);
    return answer.memory;
  }

  /** The longest the server's event loop was held up (ms, to LOOP_DELAY_RESOLUTION_MS) since the last call or the start. */
  async maxLoopDelayMs(): Promise<number> {
    const answer = await this.#ask({ type: 'loop-delay' });
    if (answer.type !== 'loop-delay') throw new Error(`the server answered ${answer.type} to loop-delay`);
    return answer.maxMs;
  }

  /** The bare server only: sends `text` to every client. */
  broadcast(text: string): void {
    this.#send({ type: 'broadcast', text });
  }

  /** SIGKILL, as a node dies when its machine does: no close frames, the kernel closes its sockets. */
  kill(): Promise<void> {
    return this.#end('SIGKILL');
  }

  /** Idempotent; a process already dead is done. */
  stop(): Promise<void> {
    return this.#end('SIGTERM');
  }

  #ask(request: ToServer): Promise<FromServer> {
    return new Promise((resolve, reject) => {
      const onExit = () => reject(new Error(`the server exited before answering ${request.type}`));
      this.#child.once('exit', onExit);
      this.#onAnswer = (answer) => {
        this.#child.off('exit', onExit);
        this.#onAnswer = undefined;
        resolve(answer);
      };
      this.#send(request);
    });
  }

  #end(signal: NodeJS.Signals): Promise<void> {
    return new Promise((resolve) => {
      if (this.#child.exitCode !== null || this.#child.signalCode !== null) return resolve();
      this.#child.once('exit', () => resolve());
      this.#child.kill(signal);
    });
  }

  #send(message: ToServer): void {
    // To a server that died: what waits on its answer fails (#ask on its exit, a broadcast on the swarm's timeout).
    this.#child.send(message, () => undefined);
  }
}

/** The server process: `node server-process.js --server '<ServerKind as JSON>'`. */
async function runServer(kind: ServerKind): Promise<void> {
  const send = (message: FromServer) => process.send?.(message);
  const sent = () => send({ type: 'sent', at: String(process.hrtime.bigint()) });
  const gc = (globalThis as { gc?: () => void }).gc;
  const loopDelay = monitorEventLoopDelay({ resolution: LOOP_DELAY_RESOLUTION_MS });
  loopDelay.enable();
  try {
    const server = kind.kind === 'node' ? await startNode(kind, sent) : await startBare(sent);
    process.on('message', (message: ToServer) => {
      if (message.type === 'memory') {
        // Twice: the first collection's finalizers can free more on the second.
        gc?.();
        gc?.();
        const { rss, heapUsed } = process.memoryUsage();
        send({ type: 'memory', memory: { rssBytes: rss, heapUsedBytes: heapUsed } });
      }
      if (message.type === 'loop-delay') {
        send({ type: 'loop-delay', maxMs: loopDelay.max / 1e6 });
        loopDelay.reset();
      }
      if (message.type === 'broadcast') server.broadcast?.(message.text);
    });
    process.once('SIGTERM', () => void server.close().finally(() => process.exit(0)));
    send({ type: 'ready', port: server.port });
  } catch (error) {
    send({ type: 'failed', error: describeError(error) });
    process.exit(1);
  }
}

interface Started {
  readonly port: number;
  readonly broadcast?: (text: string) => void;
  close(): Promise<void>;
}

async function startNode(kind: Extract<ServerKind, { kind: 'node' }>, sent: () => void): Promise<Started> {
  let onSubscribed: () => void = () => undefined;
  const subscribed = new Promise<void>((resolve) => {
    onSubscribed = resolve;
  });
  const log = (line: string) => {
    if (line.startsWith('redis: subscribed')) onSubscribed();
    // The server logs this right after its broadcast has returned.
    if (/^feed version \d+ published/.test(line)) sent();
  };
  const { redisUrl, maxConnections, dir } = kind;
  const feedDir = path.join(dir, 'feed');
  fs.mkdirSync(feedDir, { recursive: true });
  const server = await FeedServer.start({ feedDir, reportsFile: path.join(dir, 'reports.jsonl'), host: '127.0.0.1', port: 0, redisUrl, maxConnections, log });
  await subscribed;
  return { port: server.port, close: () => server.close() };
}

async function startBare(sent: () => void): Promise<Started> {
  const bare = await bareServer();
  return {
    port: bare.port,
    broadcast: (text) => {
      for (const client of bare.wss.clients) client.send(text);
      sent();
    },
    close: bare.close,
  };
}

if (process.argv[1] === import.meta.filename && process.argv[2] === '--server') {
  await runServer(JSON.parse(process.argv[3] ?? '{}') as ServerKind);
}
