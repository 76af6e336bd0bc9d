import * as z from 'zod';

/**
 * The organisation's build config, `resources/organisation.json` in a package: written by `npm run
 * dist` (tools/dist/), read by the installed app (app/main/installation.ts) for what a first start
 * writes as config.json.
 */
export const OrganisationFile = z.strictObject({
  backend: z.strictObject({ url: z.url({ protocol: /^https?$/ }), ws_url: z.url({ protocol: /^wss?$/ }) }),
});
export type OrganisationFile = z.infer<typeof OrganisationFile>;

/** Its name in the package's `resources/`. */
export const ORGANISATION_FILE = 'organisation.json';
