import type { z } from 'zod';
import { ConfigV1, ConfigV2, ConfigV3, ConfigV4, type ConfigV5 } from './config-schema.js';

/**
 * Ordered migrations: `MIGRATIONS[n]` turns a valid version-n file into a valid version-(n+1) file.
 * Add one for every new config_version; never edit a released one.
 */
interface Migration {
  readonly from: number;
  readonly input: z.ZodType;
  readonly describe: string;
  readonly migrate: (input: never) => unknown;
}

function migration<S extends z.ZodType>(from: number, input: S, describe: string, migrate: (input: z.infer<S>) => unknown): Migration {
  return { from, input, describe, migrate: migrate as (input: never) => unknown };
}

export const MIGRATIONS: readonly Migration[] = [
  migration(1, ConfigV1, 'server_url -> backend { url, ws_url }', (v1) => {
    const url = new URL(v1.server_url);
    const ws = new URL('/ws', url);
    ws.protocol = url.protocol === 'https:' ? 'wss:' : 'ws:';
    return {
      config_version: 2,
      current_version: v1.current_version,
      log_level: v1.log_level,
      backend: { url: v1.server_url, ws_url: ws.toString() },
    } satisfies z.input<typeof ConfigV2>;
  }),
  migration(2, ConfigV2, 'update settings added with their defaults', (v2) => ({ ...v2, config_version: 3 }) satisfies z.input<typeof ConfigV3>),
  migration(3, ConfigV3, 'tray settings added with their defaults', (v3) => ({ ...v3, config_version: 4 }) satisfies z.input<typeof ConfigV4>),
  migration(4, ConfigV4, "backend.ca_file and update.reconnect_window_s added with their defaults", (v4) => ({ ...v4, config_version: 5 }) satisfies z.input<typeof ConfigV5>),
];
