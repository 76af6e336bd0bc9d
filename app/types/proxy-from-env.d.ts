// proxy-from-env (a dependency of axios, used the same way here) ships no types.
declare module 'proxy-from-env' {
  /** The proxy URL for `url` from HTTP_PROXY / HTTPS_PROXY / ALL_PROXY and NO_PROXY, or '' for none. */
  export function getProxyForUrl(url: string): string;
}
