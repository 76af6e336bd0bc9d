import { readFile } from 'node:fs/promises';
import net from 'node:net';
import { setTimeout as sleep } from 'node:timers/promises';

/**
 * A raw connection to an IPC endpoint for tests that must speak (or break) the protocol by hand:
 * write any line, read the lines that come back.
 */
export class RawPeer {
  readonly socket: net.Socket;
  readonly lines: string[] = [];
  closed = false;
  #partial = '';

  private constructor(socket: net.Socket) {
    this.socket = socket;
    socket.setEncoding('utf8');
    socket.on('data', (chunk: string) => {
      const parts = (this.#partial + chunk).split('\n');
      this.#partial = parts.pop() ?? '';
      this.lines.push(...parts);
    });
    socket.on('error', () => {}); // a peer the server cut off: the test looks at `closed`
    socket.on('close', () => {
      this.closed = true;
    });
  }

  static connect(endpoint: string): Promise<RawPeer> {
    return new Promise((resolve, reject) => {
      const socket = net.connect(endpoint);
      socket.once('connect', () => resolve(new RawPeer(socket)));
      socket.once('error', reject);
    });
  }

  send(message: object | string): void {
    this.socket.write(typeof message === 'string' ? message : `${JSON.stringify(message)}\n`);
  }

  /** The n-th line received (0-based) as JSON, waiting for it up to timeoutMs. */
  async line(n: number, timeoutMs = 5_000): Promise<Record<string, unknown>> {
    const deadline = Date.now() + timeoutMs;
    while (this.lines.length <= n) {
      if (this.closed || Date.now() > deadline) throw new Error(`no line ${n} (${this.closed ? 'closed' : 'timed out'}); got ${JSON.stringify(this.lines)}`);
      await sleep(10);
    }
    return JSON.parse(this.lines[n] as string) as Record<string, unknown>;
  }

  async waitClosed(timeoutMs: number): Promise<boolean> {
    const deadline = Date.now() + timeoutMs;
    while (!this.closed && Date.now() < deadline) await sleep(20);
    return this.closed;
  }

  destroy(): void {
    this.socket.destroy();
  }
}

/** Resident memory of a process in bytes, from /proc (the tests run on Linux). */
export async function residentBytes(pid: number): Promise<number> {
  const status = await readFile(`/proc/${pid}/status`, 'utf8');
  const kb = /VmRSS:\s+(\d+) kB/.exec(status)?.[1];
  if (kb === undefined) throw new Error(`no VmRSS for pid ${pid}`);
  return Number(kb) * 1024;
}
