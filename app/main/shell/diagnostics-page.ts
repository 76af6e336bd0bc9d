import { PAGE_FILES, PAGE_HEADERS } from '../../common/diagnostics.js';

/**
 * Where the diagnostics page comes from and who may speak for it. The page is served from the
 * package's own files under a scheme of ours (`outpost://diagnostics/`), never from the network,
 * and everything the main process accepts from a page is checked against that origin first.
 */

export const DIAGNOSTICS_SCHEME = 'outpost';
const HOST = 'diagnostics';
export const DIAGNOSTICS_PAGE_URL = `${DIAGNOSTICS_SCHEME}://${HOST}/index.html`;

export interface PageFile {
  readonly name: string;
  readonly contentType: string;
}

/**
 * Whether `url` belongs to the page's origin: our scheme and host, no credentials, no port.
 * (Node's URL gives a non-special scheme no `origin`, so the parts are compared one by one.)
 */
export function isDiagnosticsUrl(url: string | null | undefined): boolean {
  const parsed = parse(url);
  return parsed !== null && parsed.protocol === `${DIAGNOSTICS_SCHEME}:` && parsed.hostname === HOST && parsed.port === '' && parsed.username === '' && parsed.password === '';
}

/** The file a request under the scheme asks for, or null (not ours, not a page file). */
export function pageFile(url: string): PageFile | null {
  if (!isDiagnosticsUrl(url)) return null;
  const name = parse(url)?.pathname.replace(/^\//, '') || 'index.html';
  // Anything else under the scheme is a 404, whatever is on disk beside the page's files.
  const contentType = Object.hasOwn(PAGE_FILES, name) ? PAGE_FILES[name as keyof typeof PAGE_FILES] : undefined;
  return contentType === undefined ? null : { name, contentType };
}

/** The headers of every file of the page: its CSP travels with it, not only in its <meta>. */
export function pageHeaders(contentType: string): Record<string, string> {
  return { 'Content-Type': contentType, ...PAGE_HEADERS };
}

/** Who sent an IPC message, as Electron describes it (event.senderFrame, event.sender). */
export interface IpcSender {
  /** The sending frame's URL (null: the frame is gone). */
  readonly frameUrl: string | null;
  /** The frame is its page's top frame (not an iframe). */
  readonly topFrame: boolean;
  /** The id of the web contents it belongs to. */
  readonly contentsId: number;
}

/**
 * A diagnostics call is taken only from the top frame of the diagnostics window's own web contents
 * while it shows our page: not from another window, a frame inside the page, or a page it was made
 * to navigate to. `windowContentsId` is null while no diagnostics window is open.
 */
export function isTrustedSender(sender: IpcSender, windowContentsId: number | null): boolean {
  return windowContentsId !== null && sender.contentsId === windowContentsId && sender.topFrame && isDiagnosticsUrl(sender.frameUrl);
}

/**
 * The one permission the page may have: writing to the clipboard (its Copy button), for its own
 * origin. Everything else (camera, notifications, geolocation...) is refused, asked or checked.
 */
export function isPermissionGranted(permission: string, requestingUrl: string | null | undefined): boolean {
  return permission === 'clipboard-sanitized-write' && isDiagnosticsUrl(requestingUrl);
}

/**
 * A download the page may start: the support bundle it saves, made in the page itself as a
 * `blob:outpost://diagnostics/<uuid>` URL. Nothing from anywhere else is downloaded.
 */
export function isDownloadAllowed(url: string): boolean {
  return url.startsWith('blob:') && isDiagnosticsUrl(url.slice('blob:'.length));
}

/**
 * A call from the page as the JSON text dispatchApiCall checks (size, then schema). Electron's
 * structured clone carries what JSON cannot (a BigInt, a cycle, undefined): such a message becomes
 * text that no schema accepts.
 */
export function callText(message: unknown): string {
  try {
    return JSON.stringify(message) ?? '';
  } catch {
    return '';
  }
}

function parse(url: string | null | undefined): URL | null {
  return typeof url === 'string' ? URL.parse(url) : null;
}
