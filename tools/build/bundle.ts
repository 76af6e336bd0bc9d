/**
 * One compiled entry and everything it imports as a single script (esbuild), for the places that cannot
 * load the dist/ tree file by file: the updater's single executables (tools/sea/build-updater.ts).
 */
import fs from 'node:fs';
import path from 'node:path';
import { packageVersion } from './package-json.js';

export class BundleError extends Error {
  override name = 'BundleError';
}

export interface BundleOptions {
  /** The repository root: the bundle's comments name paths relative to it (the same bytes from any checkout), and its package.json gives the version. */
  readonly repoRoot: string;
  /** The compiled ESM entry (a dist/ file). */
  readonly entry: string;
  /** Where to write the bundle; it is returned in any case. */
  readonly outFile?: string | undefined;
  /** CommonJS: what a Node SEA runs (exactly one script, whose `require` sees built-in modules only). */
  readonly format: 'cjs';
  /** A release bundle: `__OUTPOST_RELEASE__` is `true` in it, so test-only switches fold away. */
  readonly release: boolean;
  /** Packages left out of the bundle, loaded from disk at run time (native bindings). */
  readonly external: readonly string[];
}

/**
 * Bundles `entry` for Node 24. The application's version is inlined as `__OUTPOST_VERSION__`: a bundle
 * has no package.json beside it to read (see app/base/version.ts).
 */
export async function bundleEntry(options: BundleOptions): Promise<Buffer> {
  const version = packageVersion(options.repoRoot);
  if (!version) throw new BundleError(`${path.join(options.repoRoot, 'package.json')} names no version to inline`);
  const esbuild = await import('esbuild');
  const define: Record<string, string> = {
    __OUTPOST_VERSION__: JSON.stringify(version),
    // ESM's import.meta.url has no CommonJS twin: the file's own URL stands in (the executable, in a SEA).
    'import.meta.url': '__outpost_import_meta_url',
  };
  if (options.release) define.__OUTPOST_RELEASE__ = 'true';
  let built: Awaited<ReturnType<typeof esbuild.build>>;
  try {
    built = await esbuild.build({
      absWorkingDir: options.repoRoot,
      entryPoints: [options.entry],
      ...(options.outFile ? { outfile: options.outFile } : {}),
      write: false,
      bundle: true,
      platform: 'node',
      target: 'node24',
      format: options.format,
      external: [...options.external],
      define,
      banner: { js: "var __outpost_import_meta_url = require('node:url').pathToFileURL(__filename).href;" },
      logLevel: 'silent',
    });
  } catch (error) {
    throw new BundleError(`esbuild could not bundle ${options.entry}: ${(error as Error).message}`);
  }
  const [output] = built.outputFiles ?? [];
  if (!output) throw new BundleError(`esbuild produced nothing for ${options.entry}`);
  const script = Buffer.from(output.contents);
  if (options.outFile) fs.writeFileSync(options.outFile, script);
  return script;
}
