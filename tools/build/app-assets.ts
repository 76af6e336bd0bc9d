/**
 * The desktop app's files that tsc does not make, built after it by `npm run build`:
 * - the diagnostics page (app/renderer): one script for the browser (esbuild), its HTML and CSS;
 * - the preload script (app/preload): one CommonJS file, as a sandboxed preload must be;
 * - the tray icons, from one source drawing, in each OS's formats (tools/build/icons.ts).
 * Everything lands in dist/, beside the compiled main process, so that one folder is the app.
 */
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { buildIcons } from './icons.js';

const REPO_ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..', '..');

/** The renderer's files copied as they are, beside its bundled script. */
const PAGE_FILES = ['index.html', 'styles.css'];

export async function buildAppAssets(repoRoot: string): Promise<void> {
  const esbuild = await import('esbuild');
  const dist = path.join(repoRoot, 'dist', 'app');
  await esbuild.build({
    absWorkingDir: repoRoot,
    entryPoints: ['app/renderer/main.ts'],
    outfile: path.join(dist, 'renderer', 'diagnostics.js'),
    bundle: true,
    platform: 'browser',
    format: 'iife',
    target: 'chrome120',
    minify: true,
    logLevel: 'warning',
  });
  for (const file of PAGE_FILES) fs.copyFileSync(path.join(repoRoot, 'app', 'renderer', file), path.join(dist, 'renderer', file));
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
}

if (process.argv[1] === fileURLToPath(import.meta.url)) await buildAppAssets(REPO_ROOT);
