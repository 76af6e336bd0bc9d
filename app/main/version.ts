import { createRequire } from 'node:module';

/** The program's version, from the package.json beside the build (set by the release build). */
export const APP_VERSION: string = (createRequire(import.meta.url)('../../../package.json') as { version: string }).version;
