import fs from 'node:fs';
import path from 'node:path';
import { Metadata, MetadataKind, type Root } from '@tufjs/models';
import { writeFileAtomic } from '../../app/base/durable-file.js';
import { FEED_METADATA_DIR } from '../../app/common/release.js';
import { DEFAULT_EXPIRY_DAYS, FeedRepo } from './feed-repo.js';
import { generateRoleKey, loadKeys, ONLINE_ROLES, type RoleName, signerFor } from './keys.js';

/** The JSON shape @tufjs/models takes (its type is not exported by name). */
type RootJson = Parameters<typeof Root.fromJSON>[0];

/** Why `rotate` asks for root.key even for another role's key, told when it is missing. */
const ROOT_NEEDED = ": root.json lists every role's key, so any rotation is a new root.json, which only the root key signs; bring root.key from where it is kept offline";

/**
 * Replaces one role's key (a key lost, leaked, or simply old): a new key in the keys folder (the old
 * one, if there, kept beside it as `<role>.key.retired-<time>`), a new root version that trusts it,
 * signed by the root key (and, for the root role, by the new one too, as TUF requires), then the feed
 * re-signed. Agents that trust any earlier root walk the chain of roots to this one, so no agent is
 * left behind. Every key it needs is read before anything changes.
 */
export function rotateKey(feedDir: string, keyDir: string, role: RoleName, now: () => Date): { version: number; retired: string | null } {
  const metadataDir = path.join(feedDir, FEED_METADATA_DIR);
  const versions = fs
    .readdirSync(metadataDir)
    .map((n) => /^(\d+)\.root\.json$/.exec(n)?.[1])
    .filter((v): v is string => v !== undefined)
    .map(Number);
  if (versions.length === 0) throw new Error(`${feedDir} has no root metadata: publish a release first`);
  const current = Math.max(...versions);
  const root = Metadata.fromJSON(MetadataKind.Root, JSON.parse(fs.readFileSync(path.join(metadataDir, `${current}.root.json`), 'utf8')));
  const rootKey = loadKeys(keyDir, ['root'], 'rotate', ROOT_NEEDED).root;
  if (!root.signed.roles.root?.keyIDs.includes(rootKey.key.keyID)) throw new Error(`the root key in ${keyDir} is not the feed's root key; rotation needs it`);
  const published = fs.existsSync(path.join(metadataDir, 'timestamp.json'));
  // The feed is re-signed after the new root: the online keys not being replaced must be at hand.
  if (published) loadKeys(keyDir, ONLINE_ROLES.filter((r) => r !== role), 'rotate');

  const oldFile = path.join(keyDir, `${role}.key`);
  const retired = fs.existsSync(oldFile) ? `${oldFile}.retired-${now().toISOString().replace(/[:.]/g, '-')}` : null;
  if (retired) fs.copyFileSync(oldFile, retired);
  const fresh = generateRoleKey(keyDir, role);

  const signed = root.signed.toJSON() as { version: number; expires: string; keys: Record<string, unknown>; roles: Record<string, { keyids: string[] }> };
  const roleEntry = signed.roles[role];
  if (!roleEntry) throw new Error(`the root has no ${role} role`);
  const oldIds = roleEntry.keyids;
  signed.version = current + 1;
  signed.expires = new Date(now().getTime() + DEFAULT_EXPIRY_DAYS.root * 86_400_000).toISOString().replace(/\.\d{3}Z$/, 'Z');
  roleEntry.keyids = [fresh.key.keyID];
  for (const oldId of oldIds) if (!Object.values(signed.roles).some((r) => r.keyids.includes(oldId))) delete signed.keys[oldId];
  signed.keys[fresh.key.keyID] = fresh.key.toJSON();
  const next = Metadata.fromJSON(MetadataKind.Root, { signed: signed as unknown as RootJson, signatures: [] });
  next.sign(signerFor(rootKey));
  if (role === 'root') next.sign(signerFor(fresh));
  const bytes = Buffer.from(JSON.stringify(next.toJSON()));
  writeFileAtomic(path.join(metadataDir, `${current + 1}.root.json`), bytes, 0o644);
  // The trust anchor for agents built from now on.
  writeFileAtomic(path.join(keyDir, 'root.json'), bytes, 0o644);

  if (published) FeedRepo.open({ feedDir, keys: loadKeys(keyDir, ONLINE_ROLES, 'rotate'), now }, null).refresh();
  return { version: current + 1, retired };
}
