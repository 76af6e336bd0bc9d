import fs from 'node:fs';
import path from 'node:path';
import { describeFsError, ErrorCode, OutpostError } from '../../../base/errors.js';
import { PAGE_FILES, type PageFileName } from '../../../common/diagnostics.js';

export interface PageFile {
  readonly body: Buffer;
  readonly contentType: string;
}

/**
 * The diagnostics page as the loopback server serves it: these URL paths and nothing else. A request
 * path is looked up here as it was sent, never joined onto the folder, so `..`, `%2e%2e`, a symlink
 * or a file added to the folder later can reach nothing.
 */
const PAGE: Readonly<Record<string, PageFileName>> = { '/': 'index.html', '/diagnostics.js': 'diagnostics.js', '/styles.css': 'styles.css' };

/**
 * Reads the page's files once, at start: a missing file is said before any URL is printed, and a
 * request never touches the disk. They are a few tens of kilobytes.
 */
export async function loadPageFiles(pageDir: string): Promise<ReadonlyMap<string, PageFile>> {
  const files = new Map<string, PageFile>();
  for (const [urlPath, file] of Object.entries(PAGE)) {
    const contentType = PAGE_FILES[file];
    const where = path.join(pageDir, file);
    const body = await fs.promises.readFile(where).catch((error: unknown) => {
      throw new OutpostError(ErrorCode.NOT_AVAILABLE, `The diagnostics page is incomplete: ${where} cannot be read (${describeFsError(error)}). Reinstall Outpost (or run \`npm run build\` in a checkout).`, {
        cause: error,
        details: { file: where },
      });
    });
    files.set(urlPath, { body, contentType });
  }
  return files;
}
