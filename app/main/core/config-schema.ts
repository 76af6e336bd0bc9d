import { z } from 'zod';
import { LOG_LEVELS } from '../../base/logger.js';

/**
 * config.json, version by version. Every version keeps its schema so that a migration can check its
 * input; `strict` makes a misspelt key an error instead of a silently ignored setting.
 */

const logLevel = z.enum(LOG_LEVELS);
const httpUrl = z.url({ protocol: /^https?$/, error: 'must be an http:// or https:// URL' });
const wsUrl = z.url({ protocol: /^wss?$/, error: 'must be a ws:// or wss:// URL' });
const version = z.string().regex(/^\d+\.\d+\.\d+(?:[-+][0-9A-Za-z.+-]+)?$/, 'must be a semantic version such as 1.2.3');

export const ConfigV1 = z
  .object({
    config_version: z.literal(1),
    current_version: version.nullable().default(null),
    log_level: logLevel.default('info'),
    server_url: httpUrl,
  })
  .strict();
export type ConfigV1 = z.infer<typeof ConfigV1>;

export const LockSettings = z
  .object({
    /** How often the holder rewrites its heartbeat. */
    heartbeat_ms: z.number().int().min(100).max(600_000).default(5_000),
    /** How old a heartbeat may get before the lock counts as abandoned. */
    stale_ms: z.number().int().min(300).max(3_600_000).default(30_000),
  })
  .strict()
  .refine((lock) => lock.stale_ms >= 3 * lock.heartbeat_ms, {
    message: 'stale_ms must be at least 3 times heartbeat_ms, or a busy holder could lose its lock',
    path: ['stale_ms'],
  });
export type LockSettings = z.infer<typeof LockSettings>;

export const ConfigV2 = z
  .object({
    config_version: z.literal(2),
    current_version: version.nullable().default(null),
    log_level: logLevel.default('info'),
    backend: z
      .object({
        /** The reference server's base URL; the release feed is `<url>/feed/`. */
        url: httpUrl,
        ws_url: wsUrl,
      })
      .strict(),
    lock: LockSettings.default({ heartbeat_ms: 5_000, stale_ms: 30_000 }),
  })
  .strict();
export type ConfigV2 = z.infer<typeof ConfigV2>;

export const UpdateSettingsV3 = z
  .object({
    /** The release channel this agent follows. */
    channel: z.string().regex(/^[a-z][a-z0-9-]{0,31}$/, 'must be lower-case letters, digits and dashes').default('stable'),
    /** How often to look for a release when no push arrives (jittered by up to a tenth). */
    poll_interval_s: z.number().int().min(1).max(7 * 24 * 3600).default(3600),
    /** Accept a release older than the running version (an admin's deliberate rollback). */
    allow_downgrade: z.boolean().default(false),
    /** A download that receives nothing for this long is abandoned and resumed at the next try. */
    stall_timeout_s: z.number().int().min(1).max(3600).default(30),
    /** Hand a staged version to the updater at once (false: stage it and wait, e.g. for a maintenance window). */
    hand_off: z.boolean().default(true),
    /** How long a new version has, once the updater starts it, to reach IDLE; after that it is rolled back. */
    health_timeout_s: z.number().int().min(1).max(600).default(60),
    /** Free space to leave on the storage folder's disk after an update is downloaded and staged. */
    min_free_mb: z.number().int().min(0).max(1_000_000_000).default(100),
    /**
     * Tests and the demo only: the TUF root.json to trust. A built agent trusts the root.json built
     * into it and ignores nothing here silently: when this is set, the log says so at every start.
     */
    trust_file: z.string().min(1).nullable().default(null),
  })
  .strict();

export const ConfigV3 = ConfigV2.extend({
  config_version: z.literal(3),
  update: UpdateSettingsV3.default({ channel: 'stable', poll_interval_s: 3600, allow_downgrade: false, stall_timeout_s: 30, hand_off: true, health_timeout_s: 60, min_free_mb: 100, trust_file: null }),
}).strict();
export type ConfigV3 = z.infer<typeof ConfigV3>;

/** The desktop app's tray menu (the `outpost` command has none). */
export const TraySettings = z
  .object({
    /** Offer "Quit" in the tray menu; a managed machine's admin turns it off so that users keep the agent running. */
    show_quit: z.boolean().default(true),
  })
  .strict();

export const ConfigV4 = ConfigV3.extend({
  config_version: z.literal(4),
  tray: TraySettings.default({ show_quit: true }),
}).strict();
export type ConfigV4 = z.infer<typeof ConfigV4>;

export const BackendSettings = z
  .object({
    /** The reference server's base URL; the release feed is `<url>/feed/`. */
    url: httpUrl,
    ws_url: wsUrl,
    /**
     * A PEM file of the organisation's CA certificates, trusted for the backend besides Node's and the
     * system's roots (a feed or server behind the organisation's own TLS). Null: the usual roots only.
     */
    ca_file: z.string().min(1).nullable().default(null),
  })
  .strict();
export type BackendSettings = z.infer<typeof BackendSettings>;

export const UpdateSettings = UpdateSettingsV3.extend({
  /**
   * When the push channel drops (its server node died, say), the first reconnect comes at a random
   * moment within this window, and later ones within a window that doubles: a node's agents return
   * spread out (full jitter), not all at once.
   */
  reconnect_window_s: z.number().int().min(1).max(3600).default(30),
}).strict();
export type UpdateSettings = z.infer<typeof UpdateSettings>;

export const ConfigV5 = ConfigV4.extend({
  config_version: z.literal(5),
  backend: BackendSettings,
  update: UpdateSettings.default({ channel: 'stable', poll_interval_s: 3600, allow_downgrade: false, stall_timeout_s: 30, hand_off: true, health_timeout_s: 60, min_free_mb: 100, trust_file: null, reconnect_window_s: 30 }),
}).strict();
export type ConfigV5 = z.infer<typeof ConfigV5>;

export const CURRENT_CONFIG_VERSION = 5;
export const CurrentConfig = ConfigV5;
export type Config = ConfigV5;

/** Loopback, where `outpost-server` listens by default; an installer writes the real backend. */
export const DEFAULT_CONFIG: Config = {
  config_version: 5,
  current_version: null,
  log_level: 'info',
  backend: { url: 'http://127.0.0.1:8470', ws_url: 'ws://127.0.0.1:8470/ws', ca_file: null },
  lock: { heartbeat_ms: 5_000, stale_ms: 30_000 },
  update: { channel: 'stable', poll_interval_s: 3600, allow_downgrade: false, stall_timeout_s: 30, hand_off: true, health_timeout_s: 60, min_free_mb: 100, trust_file: null, reconnect_window_s: 30 },
  tray: { show_quit: true },
};
