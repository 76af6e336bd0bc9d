import fs from 'node:fs/promises';
import path from 'node:path';
import { protocol, type Session } from 'electron';
import { describeFsError } from '../../base/errors.js';
import type { Logger } from '../../base/logger.js';
import { DIAGNOSTICS_SCHEME, isDownloadAllowed, isPermissionGranted, pageFile, pageHeaders } from './diagnostics-page.js';

/**
 * Our scheme behaves like https (standard: a real origin, relative URLs; secure: a secure context,
 * where the clipboard API exists). Electron allows this only before the app is ready, once.
 */
export function registerDiagnosticsScheme(): void {
  protocol.registerSchemesAsPrivileged([{ scheme: DIAGNOSTICS_SCHEME, privileges: { standard: true, secure: true } }]);
}

/**
 * Makes the diagnostics page's session (window-options.ts's DIAGNOSTICS_PARTITION) serve the page
 * from `rendererDir` and refuse it everything else: permissions, asked for or checked, but the
 * clipboard for our origin; downloads but the page's own bundle. Returns what undoes the handler.
 */
export function prepareDiagnosticsSession(ses: Session, rendererDir: string, log: Logger): () => void {
  ses.protocol.handle(DIAGNOSTICS_SCHEME, (request) => servePage(request.url, rendererDir, log));
  ses.setPermissionRequestHandler((_contents, permission, grant, details) => {
    const granted = isPermissionGranted(permission, details.requestingUrl);
    if (!granted) log.warn(`the diagnostics page asked for permission "${permission}": refused`, { url: details.requestingUrl });
    grant(granted);
  });
  ses.setPermissionCheckHandler((_contents, permission, requestingOrigin) => isPermissionGranted(permission, requestingOrigin));
  ses.on('will-download', (event, item) => {
    if (isDownloadAllowed(item.getURL())) return;
    log.warn('the diagnostics page started a download that is not its own: refused', { url: item.getURL() });
    event.preventDefault();
  });
  return () => ses.protocol.unhandle(DIAGNOSTICS_SCHEME);
}

async function servePage(url: string, rendererDir: string, log: Logger): Promise<Response> {
  const file = pageFile(url);
  if (file === null) return new Response('Not found', { status: 404, headers: { 'Content-Type': 'text/plain; charset=utf-8' } });
  try {
    const body = await fs.readFile(path.join(rendererDir, file.name));
    return new Response(new Uint8Array(body), { status: 200, headers: pageHeaders(file.contentType) });
  } catch (error) {
    log.error(`the diagnostics page's ${file.name} cannot be read from ${rendererDir}: ${describeFsError(error)}`);
    return new Response('The diagnostics page is missing from this installation.', { status: 500, headers: { 'Content-Type': 'text/plain; charset=utf-8' } });
  }
}
