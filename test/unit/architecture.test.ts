import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { test } from 'node:test';
import { REPO_ROOT } from '../helpers/paths.js';

function sources(dir: string): string[] {
  return fs.readdirSync(dir, { recursive: true, encoding: 'utf8' }).filter((f) => f.endsWith('.ts')).map((f) => path.join(dir, f));
}

test('core/ never imports electron and never branches on process.platform', () => {
  const core = path.join(REPO_ROOT, 'app', 'main', 'core');
  const files = sources(core);
  assert.ok(files.length > 5);
  for (const file of files) {
    const text = fs.readFileSync(file, 'utf8');
    assert.doesNotMatch(text, /from ['"]electron['"]|require\(['"]electron['"]\)/, file);
    assert.doesNotMatch(text, /process\.platform/, file);
  }
});

test('common/ depends on nothing but zod (the contracts shared by main, preload and renderer)', () => {
  for (const file of sources(path.join(REPO_ROOT, 'app', 'common'))) {
    const imports = [...fs.readFileSync(file, 'utf8').matchAll(/from ['"]([^'"]+)['"]/g)].map((m) => m[1] ?? '');
    for (const spec of imports) assert.ok(spec.startsWith('./') || spec === 'zod', `${file} imports ${spec}`);
  }
});
