/**
 * The layering of the tree (VS Code's rule, checked by a test): every import, as the TypeScript
 * compiler itself resolves it (`tsc --explainFiles`, type-only imports included), goes from a folder
 * to one that the table below lists for it. A new arrow (the updater importing core, platform
 * importing core) fails here until the table says it is meant.
 */
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { test } from 'node:test';
import { REPO_ROOT } from '../helpers/paths.js';

/** The folders, from the bottom up. A file belongs to the longest one its path starts with. */
const LAYERS = ['app/common', 'app/renderer', 'app/preload', 'app/base', 'app/main/platform', 'app/main/core', 'app/main/shell', 'app/main', 'app/types', 'updater', 'server', 'tools', 'demo', 'bench', 'test'] as const;
type Layer = (typeof LAYERS)[number];

const PRODUCT: readonly Layer[] = ['app/common', 'app/renderer', 'app/preload', 'app/base', 'app/main/platform', 'app/main/core', 'app/main/shell', 'app/main', 'updater', 'server', 'tools'];

/** Which folders each may import (besides itself and app/types, the declarations of untyped packages). */
const ALLOWED: Readonly<Record<Layer, readonly Layer[]>> = {
  /** The contracts shared by main, preload and renderer: nothing but zod. */
  'app/common': [],
  /** The diagnostics page: a browser's code, that knows of the agent only the contracts. */
  'app/renderer': ['app/common'],
  /** Electron's bridge between the page and the main process: the contracts and nothing else. */
  'app/preload': ['app/common'],
  /** What every process shares (durable files, errors, the Logger, process identity, the locator). */
  'app/base': ['app/common'],
  /** One interface, a backend per OS. */
  'app/main/platform': ['app/base', 'app/common'],
  /** The agent, plain Node. */
  'app/main/core': ['app/main/platform', 'app/base', 'app/common'],
  'app/main/shell': ['app/main/core', 'app/main/platform', 'app/base', 'app/common'],
  /** The entries (headless, Electron) and what only they need (the command line, the installation). */
  'app/main': ['app/main/shell', 'app/main/core', 'app/main/platform', 'app/base', 'app/common'],
  'app/types': [],
  /** The standalone updater runs beside no agent: it never loads the agent's code. */
  updater: ['app/main/platform', 'app/base', 'app/common'],
  /** The reference backend. */
  server: ['app/base', 'app/common'],
  /** Release and build tools. */
  tools: ['app/base', 'app/common'],
  demo: [...PRODUCT],
  bench: [...PRODUCT, 'demo', 'test'],
  test: [...PRODUCT, 'demo'],
};

/** npm packages a layer may import (its own, not those of the layers below it). Others are free everywhere but here. */
const PACKAGES_ONLY: Readonly<Partial<Record<Layer, readonly string[]>>> = {
  'app/common': ['zod'],
  'app/renderer': ['zod'],
  'app/preload': ['zod', 'electron'],
  'app/base': ['zod', 'electron-log'],
  'app/main/platform': ['ffi-rs', '@napi-rs/keyring'],
};

/** Electron is imported by the Electron entry, the shell and the preload, nowhere else (the core runs under plain Node). */
const ELECTRON_IMPORTERS = /^app\/(main\/electron\.ts|main\/shell\/|preload\/)/;

interface Edge {
  readonly from: string;
  readonly to: string;
}

function layerOf(file: string): Layer | null {
  return [...LAYERS].sort((a, b) => b.length - a.length).find((layer) => file.startsWith(`${layer}/`)) ?? null;
}

function packageOf(file: string): string | null {
  return /^node_modules\/((?:@[^/]+\/)?[^/]+)\//.exec(file)?.[1] ?? null;
}

/**
 * Every import between files, from the compiler's own account of why it included each file, in both
 * projects: the Node one, and the renderer's (browser libraries, no Node types).
 */
function importEdges(): Edge[] {
  return ['tsconfig.json', 'app/renderer/tsconfig.json'].flatMap(projectEdges);
}

function projectEdges(project: string): Edge[] {
  const tsc = path.join(REPO_ROOT, 'node_modules', '.bin', 'tsc');
  const result = spawnSync(tsc, ['-p', project, '--noEmit', '--explainFiles'], { cwd: REPO_ROOT, encoding: 'utf8', maxBuffer: 64 * 1024 * 1024 });
  assert.equal(result.status, 0, `tsc failed: ${result.stderr}${result.stdout.slice(-2000)}`);
  const edges: Edge[] = [];
  let included = '';
  for (const line of result.stdout.split('\n')) {
    if (!line.startsWith(' ')) {
      included = line.trim();
      continue;
    }
    const importer = /^\s+Imported via .+ from file '(.+)'/.exec(line)?.[1];
    if (importer) edges.push({ from: importer, to: included });
  }
  return edges;
}

/** What breaks the table, one sentence each. */
function violations(edges: readonly Edge[]): string[] {
  const found: string[] = [];
  for (const { from, to } of edges) {
    const source = layerOf(from);
    if (source === null) continue; // a package importing another
    const pkg = packageOf(to);
    if (pkg !== null) {
      const types = pkg.startsWith('@types/') ? pkg.slice('@types/'.length) : pkg;
      if (types === 'electron' && !ELECTRON_IMPORTERS.test(from)) found.push(`${from} imports electron: only app/main/electron.ts, app/main/shell/ and app/preload/ may`);
      const only = PACKAGES_ONLY[source];
      if (only && !only.includes(types) && types !== 'node') found.push(`${from} imports ${pkg}, which ${source} may not (it may: ${only.join(', ')})`);
      continue;
    }
    const target = layerOf(to);
    if (target === null || target === source || target === 'app/types') continue;
    if (!ALLOWED[source].includes(target)) found.push(`${from} imports ${to}: ${source} may not import ${target}`);
  }
  return found;
}

const edges = importEdges();

test('every import follows the layer table (updater and platform never import core; common imports only zod)', () => {
  assert.ok(edges.length > 200, `the compiler listed ${edges.length} imports`);
  assert.ok(edges.some((e) => e.from.startsWith('updater/') && e.to.startsWith('app/base/')), 'the updater imports base (the edges are read)');
  assert.ok(edges.some((e) => e.from.startsWith('app/renderer/') && e.to.startsWith('app/common/')), 'the renderer imports common (its project is read)');
  assert.deepEqual(violations(edges), []);
});

test('the table refuses planted updater -> core, core -> electron and renderer -> core imports', () => {
  const planted = [
    { from: 'updater/run-job.ts', to: 'app/main/core/agent.ts' },
    { from: 'app/main/platform/win32.ts', to: 'app/main/core/ipc-secret.ts' },
    { from: 'app/main/core/agent.ts', to: 'node_modules/electron/electron.d.ts' },
    { from: 'app/renderer/main.ts', to: 'app/main/core/agent.ts' },
  ];
  assert.deepEqual(violations([...edges, ...planted]), [
    'updater/run-job.ts imports app/main/core/agent.ts: updater may not import app/main/core',
    'app/main/platform/win32.ts imports app/main/core/ipc-secret.ts: app/main/platform may not import app/main/core',
    'app/main/core/agent.ts imports electron: only app/main/electron.ts, app/main/shell/ and app/preload/ may',
    'app/renderer/main.ts imports app/main/core/agent.ts: app/renderer may not import app/main/core',
  ]);
});

function sources(dir: string): string[] {
  return fs.readdirSync(dir, { recursive: true, encoding: 'utf8' }).filter((f) => f.endsWith('.ts')).map((f) => path.join(dir, f));
}

test('core/ never branches on process.platform (one Platform, chosen once at start)', () => {
  const files = sources(path.join(REPO_ROOT, 'app', 'main', 'core'));
  assert.ok(files.length > 5);
  for (const file of files) assert.doesNotMatch(fs.readFileSync(file, 'utf8'), /process\.platform/, file);
});

test('common/ imports no Node built-in (the renderer loads it; built-ins are not files the compiler lists)', () => {
  for (const file of sources(path.join(REPO_ROOT, 'app', 'common'))) {
    const imports = [...fs.readFileSync(file, 'utf8').matchAll(/from ['"]([^'"]+)['"]/g)].map((m) => m[1] ?? '');
    for (const spec of imports) assert.ok(spec.startsWith('./') || spec === 'zod', `${file} imports ${spec}`);
  }
});
