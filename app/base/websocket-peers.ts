import http from 'node:http';
import type { Duplex } from 'node:stream';

/**
 * What the WebSocket servers of the product share: the reference server's push hub and the loopback
 * server of `outpost diagnostics`. Typed structurally (ws's WebSocket fits), so this layer needs no
 * WebSocket package of its own.
 */

/** What the heartbeat needs of a connection. */
export interface Pingable {
  ping(): void;
  terminate(): void;
  on(event: 'pong' | 'close', listener: () => void): unknown;
}

/**
 * The open connections of a WebSocket server, kept live: every `intervalMs` each is pinged, and one
 * that has not answered the previous ping by then is terminated (a laptop gone to sleep, a killed
 * peer), so that the count is of live peers. `onDropped` hears of those terminated, each tick.
 */
export class LivePeers<T extends Pingable> {
  readonly #open = new Set<T>();
  /** Pinged and not heard from since. */
  readonly #awaitingPong = new Set<T>();
  readonly #heartbeat: NodeJS.Timeout;

  constructor(intervalMs: number, onDropped: (dropped: readonly T[]) => void) {
    this.#heartbeat = setInterval(() => {
      // A set: a sleeping network can leave thousands of peers silent at once, and a list's lookups would make that tick quadratic.
      const dropped = new Set([...this.#open].filter((peer) => this.#awaitingPong.has(peer)));
      for (const peer of dropped) peer.terminate();
      for (const peer of this.#open) {
        if (dropped.has(peer)) continue;
        this.#awaitingPong.add(peer);
        peer.ping();
      }
      if (dropped.size > 0) onDropped([...dropped]);
    }, intervalMs).unref();
  }

  get size(): number {
    return this.#open.size;
  }

  /** Counts `peer` until it closes. Listeners the caller adds to 'close' afterwards see it uncounted. */
  add(peer: T): void {
    this.#open.add(peer);
    peer.on('pong', () => this.#awaitingPong.delete(peer));
    peer.on('close', () => {
      this.#open.delete(peer);
      this.#awaitingPong.delete(peer);
    });
  }

  [Symbol.iterator](): IterableIterator<T> {
    return this.#open.values();
  }

  /** Stops the heartbeat and terminates every connection (a closing server does not wait on close handshakes). */
  close(): void {
    clearInterval(this.#heartbeat);
    for (const peer of this.#open) peer.terminate();
    this.#open.clear();
    this.#awaitingPong.clear();
  }
}

/** Answers an upgrade request with a plain HTTP error and closes the socket once it is sent. */
export function refuseUpgrade(socket: Duplex, status: number, body: string, contentType = 'text/plain'): void {
  socket.once('finish', () => socket.destroy());
  socket.end(`HTTP/1.1 ${status} ${http.STATUS_CODES[status]}\r\nConnection: close\r\nContent-Type: ${contentType}; charset=utf-8\r\nContent-Length: ${Buffer.byteLength(body)}\r\n\r\n${body}`);
}
