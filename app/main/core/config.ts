import fs from 'node:fs';
import type { z } from 'zod';
import { removeStaleTempFiles, writeFileAtomic } from '../../base/durable-file.js';
import { MIGRATIONS } from './config-migrations.js';
import { CURRENT_CONFIG_VERSION, type Config, CurrentConfig, DEFAULT_CONFIG } from './config-schema.js';
import { describeFsError, ErrorCode, errnoCode, OutpostError } from '../../base/errors.js';
import type { Logger } from '../../base/logger.js';
import { findJsonSyntaxError } from './json-syntax.js';

export interface LoadedConfig {
  readonly config: Config;
  /** True when there was no file and the defaults were written. */
  readonly created: boolean;
  /** Set when an older file was migrated: its version and where the original was kept. */
  readonly migrated: { readonly from: number; readonly backup: string } | null;
}

const UNTOUCHED = 'Nothing was changed.';

/** What is on disk, checked and migrated in memory; nothing written. */
export interface ConfigRead {
  readonly config: Config;
  /** `missing`: no file (the defaults); otherwise the version found and the original text. */
  readonly found: { readonly version: number; readonly text: string } | 'missing';
}

/**
 * Reads config.json and migrates it in memory, without writing anything: the agent reads its config
 * before it holds the lock (the lock's own timings are configured), and only the lock holder may
 * write. Every way a file can be wrong ends in an OutpostError (exit 78) with one line naming the
 * file and the problem: an admin's hand-edited config is not ours to repair.
 */
export function readConfig(file: string, defaults: Config = DEFAULT_CONFIG): ConfigRead {
  let text: string;
  try {
    text = fs.readFileSync(file, 'utf8');
  } catch (error) {
    if (errnoCode(error) === 'ENOENT') return { config: defaults, found: 'missing' };
    throw new OutpostError(ErrorCode.CONFIG_UNREADABLE, `${file}: cannot be read (${errnoCode(error) ?? error}). ${UNTOUCHED}`, { cause: error });
  }

  let raw: unknown;
  try {
    raw = JSON.parse(text);
  } catch {
    // Not V8's message: it quotes the text, and config.json may be a link to someone's secrets.
    const where = findJsonSyntaxError(text);
    const problem = where === null ? 'not valid JSON' : `not valid JSON: ${where.atEnd ? 'it ends too early, at' : 'unexpected character at'} line ${where.line}, column ${where.column}`;
    throw new OutpostError(ErrorCode.CONFIG_PARSE, `${file}: ${problem}. Fix it, or move it away to start from defaults. ${UNTOUCHED}`);
  }
  if (typeof raw !== 'object' || raw === null || Array.isArray(raw)) {
    throw new OutpostError(ErrorCode.CONFIG_INVALID, `${file}: must hold a JSON object. ${UNTOUCHED}`);
  }

  // Files from before config_version existed are version 1.
  const declared = (raw as { config_version?: unknown }).config_version ?? 1;
  if (!Number.isInteger(declared) || (declared as number) < 1) {
    throw new OutpostError(ErrorCode.CONFIG_INVALID, `${file}: config_version must be a whole number from 1 up, not ${kindOf(declared)}. ${UNTOUCHED}`);
  }
  const version = declared as number;
  if (version > CURRENT_CONFIG_VERSION) {
    throw new OutpostError(
      ErrorCode.CONFIG_TOO_NEW,
      `${file}: config_version ${version} was written by a newer Outpost; this one understands up to ${CURRENT_CONFIG_VERSION}. Install the newer version again, or restore an older config. ${UNTOUCHED}`,
    );
  }

  let value: unknown = { ...(raw as object), config_version: version };
  for (const step of migrationsFrom(version)) {
    value = step.migrate(parseOrThrow(step.input, value, file, step.from) as never);
  }
  return { config: parseOrThrow(CurrentConfig, value, file, CURRENT_CONFIG_VERSION), found: { version, text } };
}

/**
 * Reads config.json and makes the file match what was read: the defaults written if it was missing,
 * an older version migrated after a byte-for-byte backup. Only the lock holder calls this. A broken
 * file throws as in `readConfig`, before anything is written.
 */
export function loadConfig(file: string, log: Logger, now: () => Date, defaults: Config = DEFAULT_CONFIG): LoadedConfig {
  for (const name of removeStaleTempFiles(file)) log.warn(`removed ${name}, left by a write that was interrupted`);
  const { config, found } = readConfig(file, defaults);
  if (found === 'missing') {
    writeConfig(file, config);
    log.info('no config.json: wrote the defaults', { file });
    return { config, created: true, migrated: null };
  }
  if (found.version === CURRENT_CONFIG_VERSION) return { config, created: false, migrated: null };

  const backup = `${file}.v${found.version}-${now().toISOString().replaceAll(':', '-')}.bak`;
  try {
    writeFileAtomic(backup, found.text);
  } catch (error) {
    throw cannotWrite(backup, error);
  }
  try {
    writeConfig(file, config);
  } catch (error) {
    // The original is still in place: its copy would only pile up, one per start that fails so.
    fs.rmSync(backup, { force: true });
    throw error;
  }
  for (const step of migrationsFrom(found.version)) {
    log.info(`config migrated v${step.from} -> v${step.from + 1} (${step.describe})`, { file });
  }
  log.info(`config.json migrated from v${found.version} to v${CURRENT_CONFIG_VERSION}; the original is kept`, { backup });
  return { config, created: false, migrated: { from: found.version, backup } };
}

function migrationsFrom(version: number) {
  return MIGRATIONS.filter((m) => m.from >= version);
}

/** Throws ERR_STORAGE_CREATE (exit 73) when the file cannot be replaced; it is then left as it was. */
export function writeConfig(file: string, config: Config): void {
  try {
    writeFileAtomic(file, `${JSON.stringify(config, null, 2)}\n`);
  } catch (error) {
    throw cannotWrite(file, error);
  }
}

function cannotWrite(file: string, error: unknown): OutpostError {
  return new OutpostError(ErrorCode.STORAGE_CREATE, `${file}: cannot be written: ${describeFsError(error)}. ${UNTOUCHED}`, { cause: error, details: { file, errno: errnoCode(error) } });
}

/** What a value is, without its content: a config error names the problem, never the file's bytes. */
function kindOf(value: unknown): string {
  if (value === null) return 'null';
  if (Array.isArray(value)) return 'a list';
  if (typeof value === 'number') return Number.isInteger(value) ? 'a whole number below 1' : 'a fraction';
  if (typeof value === 'object') return 'an object';
  return `a ${typeof value}`;
}

function parseOrThrow<S extends z.ZodType>(schema: S, value: unknown, file: string, version: number): z.infer<S> {
  const result = schema.safeParse(value);
  if (result.success) return result.data;
  const [first, ...others] = result.error.issues;
  const where = first && first.path.length > 0 ? first.path.join('.') : '(top level)';
  const more = others.length > 0 ? ` (and ${others.length} more problem${others.length > 1 ? 's' : ''})` : '';
  throw new OutpostError(ErrorCode.CONFIG_INVALID, `${file}: ${where}: ${first?.message ?? 'invalid'} (config_version ${version})${more}. ${UNTOUCHED}`, {
    details: { issues: result.error.issues.map((i) => ({ path: i.path.join('.'), message: i.message })) },
  });
}
