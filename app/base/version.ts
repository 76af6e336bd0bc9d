import { createRequire } from 'node:module';
import { z } from 'zod';

/** Inlined by tools/build/bundle.ts: a bundle (the updater's single executable) has no package.json beside it. */
declare const __OUTPOST_VERSION__: string | undefined;

/** The program's version: inlined in a bundle, else from the package.json of the checkout's build. */
export const APP_VERSION: string =
  typeof __OUTPOST_VERSION__ === 'string' ? __OUTPOST_VERSION__ : z.object({ version: z.string() }).parse(createRequire(import.meta.url)('../../../package.json')).version;
