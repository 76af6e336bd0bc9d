/**
 * Takes credentials out of a text before it is shown, logged or reported: the user:password of a URL
 * (`https://user:pass@host` -> `https://***@host`) and the values of query parameters whose names
 * say they carry a secret (`?token=...` -> `?token=***`). Config values such as `backend.url` may hold
 * them, and every message that names a URL would otherwise carry them to the log, to stderr, to
 * `outpost status` and to the backend's report store.
 */
export function redactSecrets(text: string): string {
  return text.replace(URL_USERINFO, '$1***@').replace(SECRET_QUERY_PARAM, '$1***');
}

/** scheme://userinfo@ — userinfo is everything up to the first @ that comes before any / ? # or space. */
const URL_USERINFO = /\b([a-z][a-z0-9+.-]*:\/\/)[^/?#@\s'"]+@/gi;

/** ?name=value or &name=value, for names that carry secrets (token, access_token, api_key, password...). */
const SECRET_QUERY_PARAM = /([?&;](?:[a-z0-9_-]*(?:token|secret|password|passwd|pwd|key|sig|signature|auth|credential|session)[a-z0-9_-]*)=)[^&#\s'"]*/gi;
