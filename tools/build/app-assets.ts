/**
 * The desktop app's files that tsc does not make, built after it by `npm run build`:
 * - the diagnostics page (app/renderer): one script for the browser (esbuild), its HTML and CSS;
 * - the preload script (app/preload): one CommonJS file, as a sandboxed preload must be;
 * - the tray icons, from one source drawing, in each OS's formats (tools/build/icons.ts);
 * - the `outpost` command's bundle, dist/app/main/outpost.js and its chunks (tools/build/app-bundle.ts).
 * Everything lands in dist/, beside the compiled main process, so that one folder is the app.
 */
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { PAGE_FILES } from '../../app/common/diagnostics.js';
import { bundleApp } from './app-bundle.js';
import { buildIcons } from './icons.js';

const REPO_ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..', '..');

/** The page's script, bundled; its other files (common/diagnostics.ts's PAGE_FILES) are copied as they are. */
const PAGE_SCRIPT = 'diagnostics.js';

export async function buildAppAssets(repoRoot: string): Promise<void> {
  const esbuild = await import('esbuild');
  const dist = path.join(repoRoot, 'dist', 'app');
  await esbuild.build({
    absWorkingDir: repoRoot,
    entryPoints: ['app/renderer/main.ts'],
    outfile: path.join(dist, 'renderer', PAGE_SCRIPT),
    bundle: true,
    platform: 'browser',
    format: 'iife',
    target: 'chrome120',
    minify: true,
    logLevel: 'warning',
  });
  for (const file of Object.keys(PAGE_FILES).filter((name) => name !== PAGE_SCRIPT)) fs.copyFileSync(path.join(repoRoot, 'app', 'renderer', file), path.join(dist, 'renderer', file));
  await esbuild.build({
    absWorkingDir: repoRoot,
    entryPoints: ['app/preload/preload.ts'],
    outfile: path.join(dist, 'preload', 'preload.cjs'),
    bundle: true,
    platform: 'node',
    format: 'cjs',
    target: 'node24',
    minify: true,
    // A sandboxed preload may require 'electron' and nothing else from disk.
    external: ['electron'],
    logLevel: 'warning',
  });
  await buildIcons(path.join(repoRoot, 'assets', 'icons'), path.join(repoRoot, 'dist', 'assets', 'icons'));
  await bundleApp({ repoRoot, kind: 'checkout', outDir: path.join(repoRoot, 'dist') });
}

if (process.argv[1] === fileURLToPath(import.meta.url)) await buildAppAssets(REPO_ROOT);
