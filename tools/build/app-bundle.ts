/**
 * The main process's code as ES module bundles that share chunks (esbuild's code splitting), so that a
 * start reads a few files instead of hundreds, and what the agent loads lazily (the update pipeline,
 * error reports, axios, the diagnostics server) stays in chunks of its own, read only when needed.
 *
 * - `checkout`: the `outpost` command of a checkout, `dist/app/main/outpost.js` and its chunks beside
 *   the compiled files (bin/outpost.js runs it); a development build, test switches included.
 * - `package`: the tree that becomes the packaged app's `app.asar` (tools/dist/): package.json, the
 *   Electron entry and the `outpost` entry (which the stand-in Electron runs, tools/stand-in-electron/)
 *   with their chunks, the preload, the diagnostics page and the icons; a release build that knows it
 *   runs from a package (app/main/installation.ts).
 * Both inline the version; both leave out Electron and the native packages, loaded from disk.
 */
import fs from 'node:fs';
import path from 'node:path';
import { packageVersion } from './package-json.js';

export type AppBundleKind = 'checkout' | 'package';

/** Packages the bundles load at run time: Electron itself, and the native bindings (their binaries cannot be bundled). */
export const APP_EXTERNALS = ['electron', 'ffi-rs', '@napi-rs/keyring'] as const;

/** The bundle's entries: output name (under the bundle root) -> compiled entry (under dist/). */
const ENTRIES: Readonly<Record<AppBundleKind, Readonly<Record<string, string>>>> = {
  checkout: { 'app/main/outpost': 'app/main/headless-entry.js' },
  package: { 'app/main/outpost': 'app/main/headless-entry.js', 'app/main/electron': 'app/main/electron.js' },
};

/** Built by `npm run build` (tools/build/app-assets.ts) and copied as they are into a package. */
const PACKAGE_COPIES = ['app/preload', 'app/renderer', 'assets/icons'];

export interface AppBundleOptions {
  /** The repository root: package.json (the version) and dist/ (the compiled code). */
  readonly repoRoot: string;
  readonly kind: AppBundleKind;
  /** Where the tree goes: dist/ itself for `checkout`, an empty folder for `package`. */
  readonly outDir: string;
  /** The version to build as, instead of package.json's (tests build releases of several versions). */
  readonly version?: string | undefined;
}

export interface AppBundle {
  readonly version: string;
  /** Every file written, relative to outDir, with its size. */
  readonly files: readonly { readonly name: string; readonly bytes: number }[];
}

export async function bundleApp(options: AppBundleOptions): Promise<AppBundle> {
  const { repoRoot, kind, outDir } = options;
  const version = options.version ?? packageVersion(repoRoot);
  if (!version) throw new Error(`${path.join(repoRoot, 'package.json')} names no version`);
  const dist = path.join(repoRoot, 'dist');
  const esbuild = await import('esbuild');
  const define: Record<string, string> = { __OUTPOST_VERSION__: JSON.stringify(version) };
  if (kind === 'package') Object.assign(define, { __OUTPOST_RELEASE__: 'true', __OUTPOST_PACKAGED__: 'true' });
  const built = await esbuild.build({
    absWorkingDir: repoRoot,
    entryPoints: Object.entries(ENTRIES[kind]).map(([out, entry]) => ({ out, in: path.join(dist, entry) })),
    outdir: outDir,
    bundle: true,
    splitting: true,
    format: 'esm',
    platform: 'node',
    target: 'node24',
    chunkNames: 'app/main/chunk-[hash]',
    external: [...APP_EXTERNALS],
    define,
    // CommonJS packages (ws, electron-log, tuf-js) call require() for Node's modules: give ES modules one.
    banner: { js: "import { createRequire as __outpostCreateRequire } from 'node:module'; const require = __outpostCreateRequire(import.meta.url);" },
    minifySyntax: true,
    minifyWhitespace: true,
    keepNames: true,
    legalComments: 'none',
    metafile: true,
    logLevel: 'warning',
  });
  const files = Object.keys(built.metafile.outputs).map((name) => path.relative(outDir, path.join(repoRoot, name)));
  if (kind === 'package') {
    for (const folder of PACKAGE_COPIES) {
      fs.cpSync(path.join(dist, folder), path.join(outDir, folder), { recursive: true, filter: (source) => !source.endsWith('.map') });
    }
    fs.writeFileSync(path.join(outDir, 'package.json'), `${JSON.stringify(appManifest(repoRoot, version), null, 2)}\n`);
  }
  return { version, files: listFiles(outDir, kind === 'checkout' ? files : null) };
}

/**
 * The package.json inside app.asar: what Electron and electron-builder read (name, version, entry),
 * and the native packages the bundle loads from node_modules, at the repository's pinned versions.
 */
function appManifest(repoRoot: string, version: string): Record<string, unknown> {
  const source = JSON.parse(fs.readFileSync(path.join(repoRoot, 'package.json'), 'utf8')) as { description?: string; license?: string; dependencies: Record<string, string> };
  const native = APP_EXTERNALS.filter((name) => name !== 'electron');
  return {
    name: 'outpost',
    productName: 'Outpost',
    version,
    description: source.description,
    license: source.license,
    author: 'Outpost',
    type: 'module',
    main: 'app/main/electron.js',
    dependencies: Object.fromEntries(native.map((name) => [name, source.dependencies[name]])),
  };
}

function listFiles(root: string, only: readonly string[] | null): { name: string; bytes: number }[] {
  const names = only ?? (fs.readdirSync(root, { recursive: true }) as string[]).filter((name) => fs.statSync(path.join(root, name)).isFile());
  return names.map((name) => ({ name: name.replaceAll(path.sep, '/'), bytes: fs.statSync(path.join(root, name)).size })).sort((a, b) => a.name.localeCompare(b.name));
}
