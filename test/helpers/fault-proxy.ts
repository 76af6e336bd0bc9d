import http from 'node:http';

export type Fault =
  /** Sends this many bytes of the body, then cuts the connection. */
  | { readonly kind: 'drop'; readonly afterBytes: number }
  /** Sends this many bytes of the body, then sends nothing more (and keeps the connection open). */
  | { readonly kind: 'stall'; readonly afterBytes: number }
  /** Sends the whole body, then more bytes for as long as the client reads (endless data). */
  | { readonly kind: 'endless' };

export interface SeenRequest {
  readonly path: string;
  readonly range: string | undefined;
}

/**
 * A test-only HTTP proxy in front of the real server, standing in for a bad network: requests whose
 * path matches a rule are forwarded but broken (cut or stalled part-way, or never ending); everything
 * else passes.
 * Each rule fires once, so a retry goes through.
 */
export class FaultProxy {
  readonly seen: SeenRequest[] = [];
  /** Response body bytes passed to clients (what an agent downloaded through this proxy). */
  bytesServed = 0;
  readonly #server: http.Server;
  readonly #rules: Array<{ match: RegExp; fault: Fault }> = [];
  readonly #held = new Set<http.ServerResponse>();

  private constructor(server: http.Server) {
    this.#server = server;
  }

  static async start(upstream: string): Promise<FaultProxy> {
    const target = new URL(upstream);
    const server = http.createServer();
    const proxy = new FaultProxy(server);
    server.on('request', (req, res) => proxy.#forward(target, req, res));
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
    this.#server.closeAllConnections();
    return new Promise((resolve) => this.#server.close(() => resolve()));
  }

  #forward(target: URL, req: http.IncomingMessage, res: http.ServerResponse): void {
    const urlPath = req.url ?? '/';
    this.seen.push({ path: urlPath, range: req.headers.range });
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
      if (!fault) {
        up.on('data', (chunk: Buffer) => {
          this.bytesServed += chunk.length;
        });
        up.pipe(res);
        return;
      }
      let sent = 0;
      up.on('data', (chunk: Buffer) => {
        if (sent >= fault.afterBytes) return;
        const part = chunk.subarray(0, fault.afterBytes - sent);
        sent += part.length;
        res.write(part);
        if (sent < fault.afterBytes) return;
        up.destroy();
        if (fault.kind === 'drop') res.destroy();
        else this.#held.add(res);
      });
    });
    upstream.on('error', () => res.destroy());
    req.pipe(upstream);
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
