import http from 'node:http';

export type Fault =
  /** Sends this many bytes of the body, then cuts the connection. */
  | { readonly kind: 'drop'; readonly afterBytes: number }
  /** Sends this many bytes of the body, then sends nothing more (and keeps the connection open). */
  | { readonly kind: 'stall'; readonly afterBytes: number }
  /**
   * Forwards this many bytes of the request body, then nothing more: a slow uplink, as the server
   * sees it, a request still coming in. When the client goes away, so does the upstream request.
   */
  | { readonly kind: 'stall-request'; readonly afterBytes: number }
  /** Sends the whole body, then more bytes for as long as the client reads (endless data). */
  | { readonly kind: 'endless' };

export interface SeenRequest {
  readonly path: string;
  readonly range: string | undefined;
  /** Body bytes passed to the client so far. */
  bytes: number;
}

/**
 * A test-only HTTP proxy in front of the real server, standing in for a bad network: requests whose
 * path matches a rule are forwarded but broken (the answer cut, stalled or never ending, or the request
 * stalled on its way up); everything else passes.
 * Each rule fires once, so a retry goes through.
 */
export class FaultProxy {
  readonly seen: SeenRequest[] = [];
  /** Response body bytes passed to clients (what an agent downloaded through this proxy). */
  bytesServed = 0;
  /** TCP connections clients opened to this proxy (kept-alive ones carry many requests). */
  connections = 0;
  readonly #server: http.Server;
  readonly #rules: Array<{ match: RegExp; fault: Fault }> = [];
  readonly #held = new Set<http.ServerResponse>();
  readonly #heldUpstream = new Set<http.ClientRequest>();

  private constructor(server: http.Server) {
    this.#server = server;
  }

  static async start(upstream: string): Promise<FaultProxy> {
    const target = new URL(upstream);
    const server = http.createServer();
    const proxy = new FaultProxy(server);
    server.on('request', (req, res) => proxy.#forward(target, req, res));
    server.on('connection', () => proxy.connections++);
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    return proxy;
  }

  get url(): string {
    const { port } = this.#server.address() as { port: number };
    return `http://127.0.0.1:${port}`;
  }

  once(match: RegExp, fault: Fault): void {
    this.#rules.push({ match, fault });
  }

  close(): Promise<void> {
    for (const res of this.#held) res.destroy();
    for (const upstream of this.#heldUpstream) upstream.destroy();
    this.#server.closeAllConnections();
    return new Promise((resolve) => this.#server.close(() => resolve()));
  }

  #forward(target: URL, req: http.IncomingMessage, res: http.ServerResponse): void {
    const urlPath = req.url ?? '/';
    const seen: SeenRequest = { path: urlPath, range: req.headers.range, bytes: 0 };
    this.seen.push(seen);
    const index = this.#rules.findIndex((r) => r.match.test(urlPath));
    const fault = index >= 0 ? this.#rules.splice(index, 1)[0]?.fault : undefined;
    // Filler after a compressed body would be a decoding error, not endless data: ask for it plain.
    const { 'accept-encoding': encoding, ...plain } = req.headers;
    const headers = fault?.kind === 'endless' ? plain : req.headers;
    const upstream = http.request({ hostname: target.hostname, port: target.port, path: urlPath, method: req.method, headers: { ...headers, host: target.host } }, (up) => {
      if (fault?.kind === 'endless') {
        const { 'content-length': _, ...headers } = up.headers;
        res.writeHead(up.statusCode ?? 502, headers);
        this.#held.add(res);
        up.pipe(res, { end: false });
        up.on('end', () => this.#flood(res));
        return;
      }
      res.writeHead(up.statusCode ?? 502, up.headers);
      if (!fault || fault.kind === 'stall-request') {
        up.on('data', (chunk: Buffer) => {
          this.bytesServed += chunk.length;
          seen.bytes += chunk.length;
        });
        up.pipe(res);
        return;
      }
      const { kind, afterBytes } = fault;
      // A client that gives up on a stalled answer takes the upstream exchange with it.
      res.once('close', () => up.destroy());
      let sent = 0;
      up.on('data', (chunk: Buffer) => {
        if (sent >= afterBytes) return;
        const part = chunk.subarray(0, afterBytes - sent);
        sent += part.length;
        seen.bytes += part.length;
        if (sent < afterBytes) {
          res.write(part);
          return;
        }
        up.destroy();
        // Cut once the last part is handed to the kernel: destroyed with writes still queued (a
        // client reading slower than the proxy writes, on a busy machine), the cut would come earlier
        // than asked, and the test's byte counts would not hold.
        if (kind === 'drop') res.write(part, () => res.destroy());
        else {
          res.write(part);
          this.#held.add(res);
        }
      });
    });
    upstream.on('error', () => res.destroy());
    if (fault?.kind === 'stall-request') this.#stallBody(req, upstream, fault.afterBytes);
    else req.pipe(upstream);
  }

  #stallBody(req: http.IncomingMessage, upstream: http.ClientRequest, afterBytes: number): void {
    this.#heldUpstream.add(upstream);
    let sent = 0;
    req.on('data', (chunk: Buffer) => {
      const part = chunk.subarray(0, Math.max(0, afterBytes - sent));
      sent += part.length;
      if (part.length > 0) upstream.write(part);
    });
    // The client is gone (killed, or gave up): the server sees the request aborted.
    req.socket.once('close', () => {
      this.#heldUpstream.delete(upstream);
      upstream.destroy();
    });
  }

  /** Writes filler as fast as the client takes it, until it hangs up. */
  #flood(res: http.ServerResponse): void {
    const filler = Buffer.alloc(64 * 1024, ' ');
    const more = () => {
      while (!res.destroyed && res.write(filler));
      if (!res.destroyed) res.once('drain', more);
    };
    more();
  }
}
