import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import https from 'node:https';
import net from 'node:net';
import path from 'node:path';
import type { TestContext } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import { REPO_ROOT, tempDir } from './paths.js';
import { Child } from './processes.js';
import { tierUnavailable } from './tiers.js';

/** Debian's nginx, standing in for any static host or CDN in front of a feed. */
export const NGINX = '/usr/sbin/nginx';
const OPENSSL = '/usr/bin/openssl';

/** A CA made for one test, and a certificate it signed for 127.0.0.1 and localhost. */
export interface TestCa {
  readonly caFile: string;
  readonly certFile: string;
  readonly keyFile: string;
}

/** A CA of the test's own (openssl), valid for two days, and a server certificate from it. */
export function makeTestCa(dir: string): TestCa {
  const at = (name: string) => path.join(dir, name);
  const openssl = (args: readonly string[]) => execFileSync(OPENSSL, args, { stdio: 'pipe' });
  const p256 = ['-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes'];
  openssl(['req', '-x509', ...p256, '-keyout', at('ca.key'), '-out', at('ca.pem'), '-days', '2', '-subj', '/CN=Outpost test CA', '-addext', 'basicConstraints=critical,CA:TRUE', '-addext', 'keyUsage=critical,keyCertSign,cRLSign']);
  openssl(['req', ...p256, '-keyout', at('feed.key'), '-out', at('feed.csr'), '-subj', '/CN=127.0.0.1']);
  fs.writeFileSync(at('feed.ext'), 'subjectAltName=IP:127.0.0.1,DNS:localhost\nbasicConstraints=CA:FALSE\nkeyUsage=critical,digitalSignature\nextendedKeyUsage=serverAuth\n');
  openssl(['x509', '-req', '-in', at('feed.csr'), '-CA', at('ca.pem'), '-CAkey', at('ca.key'), '-CAcreateserial', '-out', at('feed.pem'), '-days', '2', '-extfile', at('feed.ext')]);
  return { caFile: at('ca.pem'), certFile: at('feed.pem'), keyFile: at('feed.key') };
}

/**
 * nginx serving `root` (the folder that holds `feed/`) over TLS on a free loopback port, with the
 * product's own includes: server/nginx/outpost-feed.conf, and outpost-backend.conf in front of the
 * outpost-server nodes on `backendPorts` when given (nginx balances them); nothing else. Stopped
 * when the test ends. Null, the test skipped (failed under CI), without nginx or openssl.
 */
export async function nginxOrSkip(t: TestContext, root: string, backendPorts: readonly number[] = []): Promise<{ url: string; ca: TestCa } | null> {
  for (const [tool, pkg] of [
    [NGINX, 'nginx-light'],
    [OPENSSL, 'openssl'],
  ] as const) {
    if (!fs.existsSync(tool)) {
      tierUnavailable(t, 'static host', `${tool} not found`, `apt-get install ${pkg}`);
      return null;
    }
  }
  const dir = tempDir(t, 'outpost-nginx-');
  const ca = makeTestCa(dir);
  const port = await freePort();
  const conf = path.join(dir, 'nginx.conf');
  fs.writeFileSync(
    conf,
    `daemon off;
master_process off;
pid ${dir}/nginx.pid;
error_log ${dir}/error.log;
events { worker_connections 512; }
http {
  include /etc/nginx/mime.types;
  default_type application/octet-stream;
  access_log off;
  client_body_temp_path ${dir}/body;
  proxy_temp_path ${dir}/proxy;
  fastcgi_temp_path ${dir}/fastcgi;
  uwsgi_temp_path ${dir}/uwsgi;
  scgi_temp_path ${dir}/scgi;
  ${backendPorts.length === 0 ? '' : `upstream outpost_servers { ${backendPorts.map((port) => `server 127.0.0.1:${port};`).join(' ')} }`}
  server {
    listen 127.0.0.1:${port} ssl;
    ssl_certificate ${ca.certFile};
    ssl_certificate_key ${ca.keyFile};
    root ${root};
    location / { return 404; }
    include ${path.join(REPO_ROOT, 'server', 'nginx', 'outpost-feed.conf')};
    ${backendPorts.length === 0 ? '' : `include ${path.join(REPO_ROOT, 'server', 'nginx', 'outpost-backend.conf')};`}
  }
}
`,
  );
  const nginx = new Child(NGINX, ['-e', path.join(dir, 'error.log'), '-p', dir, '-c', conf], process.env);
  t.after(async () => {
    nginx.kill('SIGQUIT');
    await nginx.finish(5_000);
  });
  const url = `https://127.0.0.1:${port}`;
  for (const deadline = Date.now() + 10_000; ; await sleep(50)) {
    const status = await get(`${url}/feed/`, ca.caFile).then(
      (r) => r.status,
      () => 0,
    );
    if (status === 404) return { url, ca };
    if (Date.now() > deadline) throw new Error(`nginx did not answer on ${url}: ${nginx.stderr}${fs.readFileSync(path.join(dir, 'error.log'), 'utf8')}`);
  }
}

/** A GET over TLS trusting `caFile` only: status, headers and the body's length. */
export function get(url: string, caFile: string, headers: Record<string, string> = {}): Promise<{ status: number; headers: Record<string, string | string[] | undefined>; bytes: number }> {
  return new Promise((resolve, reject) => {
    const request = https.get(url, { ca: fs.readFileSync(caFile), headers, agent: false }, (response) => {
      let bytes = 0;
      response.on('data', (data: Buffer) => {
        bytes += data.length;
      });
      response.on('end', () => resolve({ status: response.statusCode ?? 0, headers: response.headers, bytes }));
      response.on('error', reject);
    });
    request.on('error', reject);
  });
}

export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = net.createServer();
    server.on('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const { port } = server.address() as net.AddressInfo;
      server.close(() => resolve(port));
    });
  });
}
