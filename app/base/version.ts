import { createRequire } from 'node:module';

/** Inlined by tools/build/bundle.ts: a bundle (the updater's single executable) has no package.json beside it. */
declare const __OUTPOST_VERSION__: string | undefined;

/** The program's version, from the package.json beside the build (set by the release build). */
export const APP_VERSION: string =
  typeof __OUTPOST_VERSION__ === 'string' ? __OUTPOST_VERSION__ : (createRequire(import.meta.url)('../../../package.json') as { version: string }).version;
