import path from 'node:path';
import { parseArgs } from 'node:util';
import { redactSecrets } from '../app/base/redact.js';
import { describeError, errnoCode } from '../app/base/errors.js';
import { ExitCode } from '../app/common/exit-codes.js';
import { isRedisUrl } from '../app/common/publish-events.js';
import type { CommandIo } from './agents-command.js';
import { failuresTable, summarizeFailures, type FailureSummary } from './failures.js';
import { readReportsFile } from './file-reports.js';
import { RedisLink } from './redis-link.js';
import { readReportsStream } from './redis-reports.js';

export const DEFAULT_SINCE = '1h';

export interface FailuresIo extends CommandIo {
  /** The reports file when neither --reports nor --redis is given (the server's default). */
  readonly defaultReportsFile: string;
}

const OPTIONS = {
  reports: { type: 'string' },
  redis: { type: 'string' },
  since: { type: 'string' },
  json: { type: 'boolean' },
  help: { type: 'boolean', short: 'h' },
} as const;

function parseOptions(argv: string[]) {
  return parseArgs({ args: argv, options: OPTIONS, strict: true, allowPositionals: false });
}

const UNIT_MS: Readonly<Record<string, number>> = { s: 1_000, m: 60_000, h: 3_600_000, d: 86_400_000 };

/** `outpost-server failures ARGS`: prints the failures of the window; resolves with the exit code. */
export async function failuresMain(argv: string[], io: FailuresIo): Promise<number> {
  let values: ReturnType<typeof parseOptions>['values'];
  try {
    ({ values } = parseOptions(argv));
  } catch (error) {
    return usageError(io, describeError(error));
  }
  if (values.help) {
    io.stdout(io.usage);
    return ExitCode.OK;
  }
  const since = values.since ?? DEFAULT_SINCE;
  const window = /^(\d{1,6})([smhd])$/.exec(since);
  if (!window) return usageError(io, `--since must be a duration such as 30m, 1h or 7d (got "${since}")`);
  const from = new Date(io.now().getTime() - Number(window[1]) * (UNIT_MS[window[2] ?? 'h'] ?? 0));
  if (values.redis !== undefined && values.reports !== undefined) return usageError(io, 'give --reports FILE or --redis URL, not both: they are two different stores');
  if (values.redis !== undefined && !isRedisUrl(values.redis)) return usageError(io, `--redis must be a redis:// or rediss:// URL (got "${values.redis}")`);

  const summary = values.redis !== undefined ? await fromRedis(values.redis, from, io) : await fromFile(path.resolve(values.reports ?? io.defaultReportsFile), from, io);
  if (typeof summary === 'number') return summary;
  io.stdout(values.json ? `${JSON.stringify(summary)}\n` : failuresTable(summary));
  return ExitCode.OK;
}

async function fromRedis(url: string, since: Date, io: FailuresIo): Promise<FailureSummary | number> {
  const where = redactSecrets(url);
  let link: RedisLink | undefined;
  try {
    link = await RedisLink.openOneShot(url);
    return await summarizeFailures(readReportsStream(link.commands, since), since);
  } catch (error) {
    io.stderr(`outpost-server failures: cannot read the reports from Redis at ${where}: ${describeError(error)}\n`);
    return ExitCode.UNAVAILABLE;
  } finally {
    link?.close();
  }
}

async function fromFile(file: string, since: Date, io: FailuresIo): Promise<FailureSummary | number> {
  try {
    return await summarizeFailures(readReportsFile(file), since);
  } catch (error) {
    const missing = errnoCode(error) === 'ENOENT';
    io.stderr(`outpost-server failures: cannot read the reports file ${file}: ${missing ? 'it does not exist (give the server\'s --reports FILE)' : describeError(error)}\n`);
    return missing ? ExitCode.NO_INPUT : ExitCode.IO;
  }
}

function usageError(io: FailuresIo, problem: string): number {
  io.stderr(`outpost-server failures: ${problem}\n\n${io.usage}`);
  return ExitCode.USAGE;
}
