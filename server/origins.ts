/**
 * Which web pages may use the server's WebSocket and `POST /reports`. Browsers put an `Origin` header
 * on every WebSocket upgrade and cross-site POST. Agents (Node's ws, axios) send none. So a request with
 * an Origin that is not on the list comes from a page the user happens to have open, trying to reach a
 * server it should not know about (typically this one on loopback), and is refused. The list starts empty.
 */
export class OriginPolicy {
  readonly #allowed: ReadonlySet<string>;

  /** `allowed`: origins such as https://console.example.com (see parseOrigin); throws on anything else. */
  constructor(allowed: readonly string[]) {
    this.#allowed = new Set(
      allowed.map((text) => {
        const origin = parseOrigin(text);
        if (origin === undefined) throw new Error(`"${text}" is not an origin (https://host or http://host:port, without a path).`);
        return origin;
      }),
    );
  }

  /** Whether a request with this `Origin` header (undefined: none, an agent) may go on. */
  allows(header: string | undefined): boolean {
    if (header === undefined) return true;
    const origin = parseOrigin(header);
    return origin !== undefined && this.#allowed.has(origin);
  }
}

/**
 * The origin `text` names, serialized as browsers send it (lower-case scheme and host, no default
 * port), or undefined if it is not an http(s) origin: a path (other than "/"), query, fragment or
 * credentials, or the `null` origin of sandboxed frames and local files.
 */
export function parseOrigin(text: string): string | undefined {
  let url: URL;
  try {
    url = new URL(text);
  } catch {
    return undefined;
  }
  if (url.protocol !== 'http:' && url.protocol !== 'https:') return undefined;
  if (url.username || url.password || url.search || url.hash || url.pathname !== '/') return undefined;
  return url.origin;
}
