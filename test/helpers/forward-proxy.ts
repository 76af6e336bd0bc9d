import http from 'node:http';
import net from 'node:net';

/**
 * A test-only forward proxy, standing in for a corporate one: plain HTTP requests in absolute form
 * are forwarded, and CONNECT opens a tunnel (what a WebSocket or HTTPS client asks for). It records
 * what passed, so a test can show the agent really went through it.
 */
export class ForwardProxy {
  readonly requests: string[] = [];
  readonly tunnels: string[] = [];
  readonly #server: http.Server;
  readonly #sockets = new Set<net.Socket>();

  private constructor(server: http.Server) {
    this.#server = server;
  }

  static async start(): Promise<ForwardProxy> {
    const server = http.createServer();
    const proxy = new ForwardProxy(server);
    server.on('request', (req, res) => {
      proxy.requests.push(`${req.method} ${req.url}`);
      const target = new URL(req.url ?? '');
      const upstream = http.request({ hostname: target.hostname, port: target.port, path: `${target.pathname}${target.search}`, method: req.method, headers: req.headers }, (up) => {
        res.writeHead(up.statusCode ?? 502, up.headers);
        up.pipe(res);
      });
      upstream.on('error', () => res.destroy());
      req.pipe(upstream);
    });
    server.on('connect', (req, client: net.Socket, head: Buffer) => {
      proxy.tunnels.push(req.url ?? '');
      const [host, port] = (req.url ?? '').split(':');
      const upstream = net.connect(Number(port), host, () => {
        client.write('HTTP/1.1 200 Connection Established\r\n\r\n');
        upstream.write(head);
        upstream.pipe(client);
        client.pipe(upstream);
      });
      for (const socket of [client, upstream]) {
        proxy.#sockets.add(socket);
        socket.on('error', () => {
          client.destroy();
          upstream.destroy();
        });
        socket.on('close', () => proxy.#sockets.delete(socket));
      }
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    return proxy;
  }

  get url(): string {
    return `http://127.0.0.1:${(this.#server.address() as net.AddressInfo).port}`;
  }

  close(): Promise<void> {
    for (const socket of this.#sockets) socket.destroy();
    this.#server.closeAllConnections();
    return new Promise((resolve) => this.#server.close(() => resolve()));
  }
}
