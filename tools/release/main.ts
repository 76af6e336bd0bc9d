import fs from 'node:fs';
import path from 'node:path';
import { parseArgs } from 'node:util';
import { Metadata, MetadataKind } from '@tufjs/models';
import { FeedRepo, newRoot } from './feed-repo.js';
import { prune } from './prune.js';
import { describeError } from '../../app/base/errors.js';
import { ExitCode } from '../../app/common/exit-codes.js';
import { isRedisUrl } from '../../app/common/publish-events.js';
import { redactSecrets } from '../../app/base/redact.js';
import { announcePublish } from './announce.js';
import { type BucketLocation, BucketSyncError, parseBucketUrl, syncFeedToBucket } from './bucket-sync.js';
import { generateRoleKey, loadKeys, MissingKeyError, ONLINE_ROLES, ROLES, type RoleName } from './keys.js';
import { rotateKey } from './rotate.js';

export const USAGE = `Usage:
  outpost-release keygen --out DIR
      New Ed25519 keys, one per TUF role (DIR/root.key, targets.key, snapshot.key, timestamp.key;
      mode 0600), and DIR/root.json: the file an agent trusts to verify the feed. Keep root.key
      offline: publish, channel and refresh need only the other three; rotate needs root.key too.
  outpost-release publish --app DIR --version X --key KEYDIR --feed FEED
                          [--channel stable] [--rollout 100] [--min-version V] [--allow-older]
                          [--redis URL] [BUCKET]
      Signs and publishes every file of DIR as version X and points the channel at it.
  outpost-release channel --feed FEED --key KEYDIR --channel C --version X [--rollout P]
                          [--min-version V] [--allow-older] [--redis URL] [BUCKET]
      Points a channel at a published version, or widens its rollout (0-100 % of agents).
      With --redis, both then announce the new feed version to every outpost-server node started
      with --redis (Redis pub/sub), which push it to their agents.
  outpost-release refresh --feed FEED --key KEYDIR [BUCKET]
      Re-signs the feed with fresh expiry dates (the timestamp lasts 7 days: run this daily).
  outpost-release rotate --feed FEED --key KEYDIR --role root|targets|snapshot|timestamp [BUCKET]
      Replaces a role's key: a new root version trusts the new key (signed by the old root key),
      and the feed is re-signed. Agents follow the chain of roots by themselves. Any rotation needs
      root.key in KEYDIR (with the other three): root.json lists every role's key, and only the
      root key signs a new root.json.
  outpost-release prune --feed FEED --key KEYDIR --keep N [--grace-days 7] [BUCKET]
      Keeps the newest N releases (and every release a channel offers) and retires the others;
      removes the files and documents that no kept release needs once they have been unused for
      the grace period (agents and caches that read the feed before still find them meanwhile).
      With BUCKET, they are removed from the bucket too, after its new timestamp.json.
  outpost-release sync --feed FEED --s3 s3://BUCKET/PREFIX [--s3-endpoint URL] [--s3-region R]
                       [--delete]
      Copies to the bucket what it lacks of the feed folder, timestamp.json last (what the commands
      above do with BUCKET): to finish a copy that failed. --delete also removes from the bucket
      the published files the folder no longer has (as prune does).
  outpost-release list --feed FEED
      The published releases and what each channel offers.

KEYDIR is the keys folder made by keygen, not a key file.
BUCKET: --s3 s3://BUCKET/PREFIX [--s3-endpoint URL] [--s3-region R]: once the feed folder is
  written, the bucket gets what it lacks of it: content-addressed files and stored targets first,
  then versioned metadata, then timestamp.json, so its readers see the previous feed until the new
  one is complete. --s3-endpoint: an S3-compatible service (MinIO, Ceph, R2...), addressed
  path-style; --s3-region: default AWS_REGION, else us-east-1. Credentials: the AWS SDK's chain
  (AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY, AWS_PROFILE, SSO, instance roles), never an option.
Options for drills and tests: --expires ISO-DATE signs with that expiry (e.g. one in the past).
Exit codes: 0 ok, 64 usage, 65 input refused (an application folder, a feed, a version; a bucket
holding another feed), 66 a key missing, or no such bucket, 69 published but not announced (Redis
unreachable), or the bucket unreachable, 77 the bucket refused the credentials. When the bucket
fails, its timestamp.json is left as it was (readers see its previous feed, complete): run sync.`;

/** The `outpost-release` command; returns its exit code. */
export async function main(argv: readonly string[]): Promise<number> {
  let parsed: ReturnType<typeof parse>;
  try {
    parsed = parse(argv);
  } catch (error) {
    return usage((error as Error).message);
  }
  const { values, positionals } = parsed;
  const [command, ...rest] = positionals;
  if (values.help || command === undefined) {
    process.stdout.write(`${USAGE}\n`);
    return values.help ? 0 : 64;
  }
  if (rest.length > 0) return usage(`unexpected "${rest.join(' ')}"`);
  const need = (name: keyof typeof values): string => {
    const value = values[name];
    if (typeof value !== 'string' || value === '') throw new UsageError(`${command} needs --${name}`);
    return value;
  };
  const now = () => new Date();
  try {
    const expires = values.expires === undefined ? undefined : parseDate(values.expires);
    const rollout = values.rollout === undefined ? 100 : parsePercent(values.rollout);
    switch (command) {
      case 'keygen': {
        const out = need('out');
        fs.mkdirSync(out, { recursive: true, mode: 0o700 });
        if (ROLES.some((role) => fs.existsSync(path.join(out, `${role}.key`)))) throw new Error(`${out} already holds keys; refusing to overwrite them`);
        for (const role of ROLES) generateRoleKey(out, role);
        const root = newRoot(loadKeys(out, ROLES, 'keygen'), now());
        fs.writeFileSync(path.join(out, 'root.json'), `${JSON.stringify(root.toJSON(), null, 1)}\n`);
        process.stdout.write(`keys written to ${out}; agents trust ${path.join(out, 'root.json')}\n`);
        return ExitCode.OK;
      }
      case 'publish': {
        const keyDir = keyFolder(need('key'), ONLINE_ROLES);
        const feedDir = need('feed');
        const keys = loadKeys(keyDir, ONLINE_ROLES, command);
        const redis = redisFlag(values.redis);
        const bucket = bucketFlags(values);
        let feedVersion = 0;
        const copied = await FeedRepo.withLock(feedDir, async () => {
          const result = await FeedRepo.open({ feedDir, keys, now, ...(expires && { expires }) }, trustedRoot(keyDir)).publish({
            appDir: need('app'),
            version: need('version'),
            channel: values.channel ?? 'stable',
            rolloutPercent: rollout,
            minVersion: values['min-version'] ?? null,
            allowOlder: values['allow-older'] === true,
          });
          process.stdout.write(
            `published ${result.version}: ${result.files} files, ${result.bytes} bytes; ${result.newChunks} new chunks, ${result.newStoredBytes} new bytes stored (compressed); feed version ${result.feedVersion}\n`,
          );
          feedVersion = result.feedVersion;
          return copyToBucket(bucket, feedDir, false);
        });
        // Nodes push only what readers can find: nothing is announced before the bucket has it.
        return copied === ExitCode.OK ? announce(redis, feedVersion) : copied;
      }
      case 'channel': {
        const keyDir = keyFolder(need('key'), ONLINE_ROLES);
        const feedDir = need('feed');
        const pointer = { channel: need('channel'), version: need('version'), rollout_percent: rollout, min_version: values['min-version'] ?? null };
        const keys = loadKeys(keyDir, ONLINE_ROLES, command);
        const redis = redisFlag(values.redis);
        const bucket = bucketFlags(values);
        let feedVersion = 0;
        const copied = await FeedRepo.withLock(feedDir, () => {
          const repo = FeedRepo.open({ feedDir, keys, now, ...(expires && { expires }) }, null);
          repo.setChannel(pointer, values['allow-older'] === true);
          feedVersion = repo.feedVersion;
          process.stdout.write(`channel ${pointer.channel} now offers ${pointer.version} to ${pointer.rollout_percent}% of agents\n`);
          return copyToBucket(bucket, feedDir, false);
        });
        return copied === ExitCode.OK ? announce(redis, feedVersion) : copied;
      }
      case 'refresh': {
        const keyDir = keyFolder(need('key'), ONLINE_ROLES);
        const feedDir = need('feed');
        const keys = loadKeys(keyDir, ONLINE_ROLES, command);
        const bucket = bucketFlags(values);
        return await FeedRepo.withLock(feedDir, () => {
          FeedRepo.open({ feedDir, keys, now, ...(expires && { expires }) }, null).refresh();
          process.stdout.write(`feed ${feedDir} re-signed\n`);
          return copyToBucket(bucket, feedDir, false);
        });
      }
      case 'rotate': {
        const keyDir = keyFolder(need('key'), ROLES);
        const feedDir = need('feed');
        const role = need('role');
        if (!(ROLES as readonly string[]).includes(role)) throw new UsageError(`--role must be one of ${ROLES.join(', ')}`);
        const bucket = bucketFlags(values);
        return await FeedRepo.withLock(feedDir, () => {
          const { version, retired } = rotateKey(feedDir, keyDir, role as RoleName, now);
          process.stdout.write(`the ${role} key was replaced; the feed's root is now version ${version}${retired ? ` (old key kept as ${retired})` : ''}\n`);
          return copyToBucket(bucket, feedDir, false);
        });
      }
      case 'prune': {
        const keyDir = keyFolder(need('key'), ONLINE_ROLES);
        const feedDir = need('feed');
        const keep = parseCount('--keep', need('keep'), 1);
        const graceDays = values['grace-days'] === undefined ? 7 : parseCount('--grace-days', values['grace-days'], 0);
        const keys = loadKeys(keyDir, ONLINE_ROLES, command);
        const bucket = bucketFlags(values);
        return await FeedRepo.withLock(feedDir, () => {
          const result = prune(FeedRepo.open({ feedDir, keys, now, ...(expires && { expires }) }, null), { keep, graceMs: graceDays * 86_400_000 }, now());
          process.stdout.write(
            `kept ${result.kept.join(', ') || 'nothing'}; retired ${result.retired.join(', ') || 'nothing'}; removed ${result.removedObjects} objects (${result.removedBytes} bytes)${result.removedReleases.length > 0 ? ` of ${result.removedReleases.join(', ')}` : ''}\n`,
          );
          return copyToBucket(bucket, feedDir, true);
        });
      }
      case 'sync': {
        const feedDir = need('feed');
        need('s3');
        const bucket = bucketFlags(values);
        if (!fs.existsSync(feedDir)) throw new Error(`${feedDir} does not exist: give the feed folder the releases were published to`);
        return await FeedRepo.withLock(feedDir, () => copyToBucket(bucket, feedDir, values.delete === true));
      }
      case 'list': {
        const feedDir = need('feed');
        const repo = FeedRepo.open({ feedDir, keys: null, now }, null);
        const catalog = repo.catalog();
        for (const release of catalog.releases) process.stdout.write(`${release.version}  ${release.files} files, ${release.bytes} bytes, published ${release.published}\n`);
        for (const release of catalog.retired) process.stdout.write(`${release.version}  retired ${release.retired}\n`);
        for (const c of repo.channels()) process.stdout.write(`channel ${c.channel}: ${c.version} to ${c.rollout_percent}%${c.min_version ? `, from ${c.min_version} on` : ''}\n`);
        return ExitCode.OK;
      }
      default:
        return usage(`unknown command "${command}"`);
    }
  } catch (error) {
    if (error instanceof UsageError) return usage(error.message);
    process.stderr.write(`outpost-release: ${describeError(error)}\n`);
    if (error instanceof ArgumentError) return ExitCode.USAGE;
    // A key that is missing, and any other input the tool refuses (an app folder, a feed, a version).
    return error instanceof MissingKeyError ? ExitCode.NO_INPUT : ExitCode.DATA;
  }
}

class UsageError extends Error {}
/** A usage mistake one line explains (the whole usage would bury it). */
class ArgumentError extends Error {}

/** `--key` names the keys folder; a key file given instead is the usual slip. */
function keyFolder(dir: string, roles: readonly RoleName[]): string {
  if (fs.statSync(dir, { throwIfNoEntry: false })?.isFile()) {
    throw new ArgumentError(`--key ${dir} is a file; --key takes the keys folder (made by keygen), which must hold ${roles.map((r) => `${r}.key`).join(', ')}`);
  }
  return dir;
}

function usage(problem: string): number {
  process.stderr.write(`outpost-release: ${problem}\n\n${USAGE}\n`);
  return ExitCode.USAGE;
}

function parse(argv: readonly string[]) {
  return parseArgs({
    args: [...argv],
    allowPositionals: true,
    strict: true,
    options: {
      out: { type: 'string' },
      app: { type: 'string' },
      version: { type: 'string' },
      key: { type: 'string' },
      feed: { type: 'string' },
      channel: { type: 'string' },
      rollout: { type: 'string' },
      'min-version': { type: 'string' },
      'allow-older': { type: 'boolean' },
      expires: { type: 'string' },
      role: { type: 'string' },
      keep: { type: 'string' },
      'grace-days': { type: 'string' },
      redis: { type: 'string' },
      s3: { type: 'string' },
      's3-endpoint': { type: 'string' },
      's3-region': { type: 'string' },
      delete: { type: 'boolean' },
      help: { type: 'boolean', short: 'h' },
    },
  });
}

function redisFlag(value: string | undefined): string | undefined {
  if (value !== undefined && !isRedisUrl(value)) throw new UsageError(`--redis must be a redis:// or rediss:// URL (got "${value}")`);
  return value;
}

/** --s3, --s3-endpoint, --s3-region: where the feed is copied, if anywhere. */
function bucketFlags(values: ReturnType<typeof parse>['values']): BucketLocation | undefined {
  const endpoint = values['s3-endpoint'];
  if (values.s3 === undefined) {
    if (endpoint !== undefined || values['s3-region'] !== undefined) throw new UsageError('--s3-endpoint and --s3-region go with --s3 s3://BUCKET/PREFIX');
    return undefined;
  }
  let location: { bucket: string; prefix: string };
  try {
    location = parseBucketUrl(values.s3);
  } catch (error) {
    throw new UsageError((error as Error).message);
  }
  if (endpoint !== undefined && !/^https?:\/\/[^/]/.test(endpoint)) throw new UsageError(`--s3-endpoint must be an http:// or https:// URL (got "${redactSecrets(endpoint)}")`);
  const region = values['s3-region'] ?? process.env.AWS_REGION ?? process.env.AWS_DEFAULT_REGION ?? 'us-east-1';
  return { ...location, region, ...(endpoint !== undefined && { endpoint }) };
}

/**
 * With --s3: the bucket brought up to the feed folder (bucket-sync.ts), inside the writer's lock (the
 * folder may not change while it is read). A failure says what to run to finish; the folder keeps
 * what the command wrote.
 */
async function copyToBucket(bucket: BucketLocation | undefined, feedDir: string, deleteRemoved: boolean): Promise<number> {
  if (bucket === undefined) return ExitCode.OK;
  const where = `s3://${bucket.bucket}${bucket.prefix ? `/${bucket.prefix}` : ''}`;
  try {
    const r = await syncFeedToBucket(feedDir, bucket, { deleteRemoved });
    process.stdout.write(
      `${where}: serves feed version ${r.feedVersion}; ${r.uploaded} files uploaded (${r.uploadedBytes} bytes, timestamp.json last), ${r.present} there already${deleteRemoved ? `, ${r.deleted} removed` : ''}\n`,
    );
    return ExitCode.OK;
  } catch (error) {
    if (!(error instanceof BucketSyncError)) throw error;
    const again = `outpost-release sync --feed ${feedDir} --s3 ${where}${bucket.endpoint ? ` --s3-endpoint ${redactSecrets(bucket.endpoint)}` : ''} --s3-region ${bucket.region}${deleteRemoved ? ' --delete' : ''}`;
    process.stderr.write(
      error.published
        ? `outpost-release: ${where} serves the new feed, but removing what the folder no longer has failed: ${error.message}. Run \`${again}\` to finish.\n`
        : `outpost-release: the bucket was not brought up to the feed folder: ${error.message}. Its timestamp.json was not replaced: it still serves its previous feed, complete. Run \`${again}\` to finish (it uploads only what is missing, timestamp.json last).\n`,
    );
    return error.exitCode;
  }
}

/**
 * After a publish or a channel change, with --redis: every node hears of the new feed version. A
 * failure here leaves the feed as published (agents find it at their next poll), and exits 1 saying so.
 */
async function announce(redis: string | undefined, feedVersion: number): Promise<number> {
  if (redis === undefined) return ExitCode.OK;
  try {
    const nodes = await announcePublish(redis, feedVersion);
    process.stdout.write(`feed version ${feedVersion} announced to ${nodes} outpost-server node(s) through ${redactSecrets(redis)}\n`);
    return ExitCode.OK;
  } catch (error) {
    process.stderr.write(`outpost-release: the feed is published, but announcing feed version ${feedVersion} through ${redactSecrets(redis)} failed (${describeError(error)}): no push; agents find it at their next poll. Run the same command again once Redis is back, or leave it.\n`);
    return ExitCode.UNAVAILABLE;
  }
}

/** root.json next to the keys: how a new feed gets its first root. */
function trustedRoot(keyDir: string) {
  const file = path.join(keyDir, 'root.json');
  return fs.existsSync(file) ? Metadata.fromJSON(MetadataKind.Root, JSON.parse(fs.readFileSync(file, 'utf8'))) : null;
}

function parseDate(text: string): Date {
  const date = new Date(text);
  if (Number.isNaN(date.getTime())) throw new UsageError(`--expires "${text}" is not a date (ISO 8601, e.g. 2030-01-01T00:00:00Z)`);
  return date;
}

function parseCount(option: string, text: string, least: number): number {
  const n = Number(text);
  if (!Number.isInteger(n) || n < least) throw new UsageError(`${option} must be a whole number of at least ${least}, not "${text}"`);
  return n;
}

function parsePercent(text: string): number {
  const n = Number(text);
  if (!Number.isInteger(n) || n < 0 || n > 100) throw new UsageError(`--rollout must be a whole number from 0 to 100, not "${text}"`);
  return n;
}
