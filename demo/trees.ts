/** Folders compared and measured: the installation against the release it should be. */
import crypto from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';

/** The entries of `dir` as paths, or none when it does not exist (yet). */
export function listFiles(dir: string): string[] {
  try {
    return fs.readdirSync(dir).map((name) => path.join(dir, name));
  } catch {
    return [];
  }
}

/** Every file below `dir`, relative to it, sorted. */
function walk(dir: string): string[] {
  return (fs.readdirSync(dir, { recursive: true, encoding: 'utf8' }) as string[]).filter((f) => fs.statSync(path.join(dir, f)).isFile()).sort();
}

export function sizeOf(dir: string): number {
  return walk(dir).reduce((n, f) => n + fs.statSync(path.join(dir, f)).size, 0);
}

export function countFiles(dir: string): number {
  return walk(dir).length;
}

/** null when both folders hold the same files with the same bytes, else what differs. */
export function compareTrees(actual: string, expected: string): string | null {
  const a = walk(actual);
  const e = walk(expected);
  if (a.join('\n') !== e.join('\n')) return `files [${a.join(', ')}] instead of [${e.join(', ')}]`;
  const hash = (file: string) => crypto.createHash('sha256').update(fs.readFileSync(file)).digest('hex');
  const differ = a.filter((f) => hash(path.join(actual, f)) !== hash(path.join(expected, f)));
  return differ.length ? `${differ.join(', ')} differ` : null;
}
