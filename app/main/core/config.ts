import fs from 'node:fs';
import type { z } from 'zod';
import { removeStaleTempFiles, writeFileAtomic } from './atomic-file.js';
import { MIGRATIONS } from './config-migrations.js';
import { CURRENT_CONFIG_VERSION, type Config, CurrentConfig, DEFAULT_CONFIG } from './config-schema.js';
import { ErrorCode, OutpostError, errnoCode } from './errors.js';
import type { Logger } from './logger.js';

export interface LoadedConfig {
  readonly config: Config;
  /** True when there was no file and the defaults were written. */
  readonly created: boolean;
  /** Set when an older file was migrated: its version and where the original was kept. */
  readonly migrated: { readonly from: number; readonly backup: string } | null;
}

const UNTOUCHED = 'Nothing was changed.';

/**
 * Reads config.json, migrating an older version (after keeping a byte-for-byte backup). Every way a
 * file can be wrong ends in an OutpostError (exit 78) with one line naming the file and the problem,
 * and the file is never written in that case: an admin's hand-edited config is not ours to repair.
 */
export function loadConfig(file: string, log: Logger, now: () => Date): LoadedConfig {
  for (const name of removeStaleTempFiles(file)) log.warn(`removed ${name}, left by a write that was interrupted`);

  let text: string;
  try {
    text = fs.readFileSync(file, 'utf8');
  } catch (error) {
    if (errnoCode(error) === 'ENOENT') {
      writeConfig(file, DEFAULT_CONFIG);
      log.info('no config.json: wrote the defaults', { file });
      return { config: DEFAULT_CONFIG, created: true, migrated: null };
    }
    throw new OutpostError(ErrorCode.CONFIG_UNREADABLE, `${file}: cannot be read (${errnoCode(error) ?? error}). ${UNTOUCHED}`, { cause: error });
  }

  let raw: unknown;
  try {
    raw = JSON.parse(text);
  } catch (error) {
    throw new OutpostError(ErrorCode.CONFIG_PARSE, `${file}: not valid JSON (${(error as Error).message}). Fix it, or move it away to start from defaults. ${UNTOUCHED}`);
  }
  if (typeof raw !== 'object' || raw === null || Array.isArray(raw)) {
    throw new OutpostError(ErrorCode.CONFIG_INVALID, `${file}: must hold a JSON object. ${UNTOUCHED}`);
  }

  // Files from before config_version existed are version 1.
  const declared = (raw as { config_version?: unknown }).config_version ?? 1;
  if (!Number.isInteger(declared) || (declared as number) < 1) {
    throw new OutpostError(ErrorCode.CONFIG_INVALID, `${file}: config_version must be a whole number from 1 up, not ${JSON.stringify(declared)}. ${UNTOUCHED}`);
  }
  const fileVersion = declared as number;
  if (fileVersion > CURRENT_CONFIG_VERSION) {
    throw new OutpostError(
      ErrorCode.CONFIG_TOO_NEW,
      `${file}: config_version ${fileVersion} was written by a newer Outpost; this one understands up to ${CURRENT_CONFIG_VERSION}. Install the newer version again, or restore an older config. ${UNTOUCHED}`,
    );
  }

  let value: unknown = { ...(raw as object), config_version: fileVersion };
  for (const step of MIGRATIONS.filter((m) => m.from >= fileVersion)) {
    value = step.migrate(parseOrThrow(step.input, value, file, step.from) as never);
  }
  const config = parseOrThrow(CurrentConfig, value, file, CURRENT_CONFIG_VERSION);

  if (fileVersion === CURRENT_CONFIG_VERSION) return { config, created: false, migrated: null };

  // Everything was checked in memory first: only now is anything written.
  const backup = `${file}.v${fileVersion}-${now().toISOString().replaceAll(':', '-')}.bak`;
  writeFileAtomic(backup, text);
  writeConfig(file, config);
  for (const step of MIGRATIONS.filter((m) => m.from >= fileVersion)) {
    log.info(`config migrated v${step.from} -> v${step.from + 1} (${step.describe})`, { file });
  }
  log.info(`config.json migrated from v${fileVersion} to v${CURRENT_CONFIG_VERSION}; the original is kept`, { backup });
  return { config, created: false, migrated: { from: fileVersion, backup } };
}

export function writeConfig(file: string, config: Config): void {
  writeFileAtomic(file, `${JSON.stringify(config, null, 2)}\n`);
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
