import { randomUUID } from 'node:crypto';
import fs from 'node:fs';
import http from 'node:http';
import path from 'node:path';
import { WebSocket } from 'ws';
import type { ErrorReport } from '../../app/common/reports.js';
import { FeedServer, type FeedServerOptions } from '../../server/server.js';

export interface Reply {
  readonly status: number;
  readonly headers: http.IncomingHttpHeaders;
  readonly body: Buffer;
}

/**
 * One HTTP request with the path sent exactly as given (no URL normalization, so `..` and
 * encodings reach the server as written), on a fresh connection.
 */
export function request(baseUrl: string, requestPath: string, options: { method?: string; headers?: http.OutgoingHttpHeaders; body?: Buffer | string; chunks?: readonly Buffer[] } = {}): Promise<Reply> {
  const { hostname, port } = new URL(baseUrl);
  return new Promise((resolve, reject) => {
    const req = http.request({ hostname, port, path: requestPath, method: options.method ?? 'GET', headers: options.headers, agent: false }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (chunk: Buffer) => chunks.push(chunk));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, headers: res.headers, body: Buffer.concat(chunks) }));
      res.on('error', reject);
    });
    req.on('error', reject);
    if (options.chunks) {
      for (const chunk of options.chunks) req.write(chunk);
      req.end();
    } else {
      req.end(options.body);
    }
  });
}

export function json(reply: Reply): unknown {
  return JSON.parse(reply.body.toString('utf8'));
}

/** A TUF timestamp document (signatures are not the server's business). */
export function timestampJson(version: number): string {
  return JSON.stringify({ signed: { _type: 'timestamp', spec_version: '1.0.31', version, expires: '2030-01-01T00:00:00Z', meta: { 'snapshot.json': { version } } }, signatures: [] });
}

/** What the release tool does last: timestamp.json replaced atomically (temp file + rename). */
export function publish(feedDir: string, version: number): void {
  const metadata = path.join(feedDir, 'metadata');
  fs.mkdirSync(metadata, { recursive: true });
  const temp = path.join(metadata, `.timestamp.json.${process.pid}.tmp`);
  fs.writeFileSync(temp, timestampJson(version));
  fs.renameSync(temp, path.join(metadata, 'timestamp.json'));
}

export function validReport(overrides: Partial<ErrorReport> = {}): ErrorReport {
  return {
    id: randomUUID(),
    time: '2026-01-02T03:04:05.000Z',
    agent_id: 'agent-1',
    agent_version: '1.2.3',
    state: 'IDLE',
    code: 'ERR_VERIFY_HASH',
    message: 'the downloaded file does not match its signed hash',
    context: { target: 'outpost-1.2.4.tar.gz', attempt: 2 },
    ...overrides,
  };
}

export function postReport(baseUrl: string, body: unknown): Promise<Reply> {
  return request(baseUrl, '/reports', { method: 'POST', headers: { 'Content-Type': 'application/json' }, body: JSON.stringify(body) });
}

export const lines = (file: string): string[] => fs.readFileSync(file, 'utf8').split('\n').filter((l) => l !== '');

/** A FeedServer on an ephemeral loopback port, closed when the test ends. */
export async function startServer(t: { after: (fn: () => Promise<void>) => void }, options: Partial<FeedServerOptions> & { feedDir: string; reportsFile: string }): Promise<FeedServer> {
  const server = await FeedServer.start({ host: '127.0.0.1', port: 0, pollIntervalMs: 200, ...options });
  t.after(() => server.close());
  return server;
}

/** An open WebSocket client that records the messages it receives and when. */
export class PushClient {
  readonly messages: { readonly text: string; readonly at: bigint }[] = [];
  readonly #waiters: (() => void)[] = [];

  private constructor(readonly socket: WebSocket) {
    socket.on('message', (data) => {
      this.messages.push({ text: data.toString(), at: process.hrtime.bigint() });
      for (const wake of this.#waiters.splice(0)) wake();
    });
  }

  /** `headers`: extra handshake headers (an Origin, as a browser sends). */
  static connect(url: string, options: { autoPong?: boolean; headers?: Record<string, string> } = {}): Promise<PushClient> {
    const socket = new WebSocket(url, { autoPong: options.autoPong ?? true, headers: options.headers ?? {} });
    return new Promise((resolve, reject) => {
      socket.once('open', () => resolve(new PushClient(socket)));
      socket.once('error', reject);
    });
  }

  /** The next message (or the first one already received), or a rejection after timeoutMs. */
  nextMessage(timeoutMs: number, index = 0): Promise<{ text: string; at: bigint }> {
    return new Promise((resolve, reject) => {
      const check = () => {
        const message = this.messages[index];
        if (message) {
          clearTimeout(timer);
          resolve(message);
          return;
        }
        this.#waiters.push(check);
      };
      const timer = setTimeout(() => reject(new Error(`no push within ${timeoutMs} ms`)), timeoutMs);
      check();
    });
  }

  closed(): Promise<void> {
    if (this.socket.readyState === WebSocket.CLOSED) return Promise.resolve();
    return new Promise((resolve) => this.socket.once('close', () => resolve()));
  }

  terminate(): void {
    this.socket.terminate();
  }
}

/** `count` clients, connected `batch` at a time (a burst of thousands of handshakes overflows the listen backlog). */
export async function connectMany(url: string, count: number, batch = 200): Promise<PushClient[]> {
  const clients: PushClient[] = [];
  for (let i = 0; i < count; i += batch) {
    clients.push(...(await Promise.all(Array.from({ length: Math.min(batch, count - i) }, () => PushClient.connect(url)))));
  }
  return clients;
}

export function wsUrl(server: FeedServer, pathname = '/ws'): string {
  return `${server.url.replace(/^http/, 'ws')}${pathname}`;
}

/** The HTTP answer to a WebSocket upgrade the server refuses (rejects if it is accepted instead). */
export function upgradeRefusal(url: string, headers: Record<string, string> = {}): Promise<{ status: number; body: string }> {
  return refusalOf(new WebSocket(url, { headers }));
}

/** How the upgrade `socket` is attempting is answered, when it is refused (rejects if it is accepted). */
export function refusalOf(socket: WebSocket): Promise<{ status: number; body: string }> {
  return new Promise((resolve, reject) => {
    socket.once('unexpected-response', (_req, res) => {
      const chunks: Buffer[] = [];
      res.on('data', (chunk: Buffer) => chunks.push(chunk));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body: Buffer.concat(chunks).toString('utf8') }));
    });
    socket.once('open', () => {
      socket.terminate();
      reject(new Error(`the upgrade to ${socket.url} was accepted`));
    });
    socket.once('error', reject);
  });
}
