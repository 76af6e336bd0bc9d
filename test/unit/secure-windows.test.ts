/**
 * No window of the app is made with options of its own: every Electron window or view (BaseWindow,
 * BrowserWindow, BrowserView, WebContentsView) under app/ is created from a call to one of the
 * constructors of app/main/shell/window-options.ts, whose options are checked here to hold the
 * security checklist. The sources are read by the TypeScript compiler itself (TypeScript 7's API,
 * `typescript/unstable/sync`, which runs the compiler as a child process): a creation is found by
 * the type it makes, so an alias (`import { BrowserWindow as W }`, `const W = BrowserWindow`) or a
 * subclass does not hide one.
 */
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { test } from 'node:test';
import { isCallExpression, isClassLikeDeclaration, isNewExpression, isPropertyAccessExpression, type Node, type SourceFile } from 'typescript/unstable/ast';
import type { FileSystem } from 'typescript/unstable/fs';
import { API, type Checker, type Symbol as TsSymbol, SymbolFlags, type Type } from 'typescript/unstable/sync';
import * as windowOptions from '../../app/main/shell/window-options.js';
import { REPO_ROOT } from '../helpers/paths.js';

/** Electron's classes that make a window or host a page. */
const WINDOW_CLASSES = new Set(['BaseWindow', 'BrowserWindow', 'BrowserView', 'WebContentsView']);
const OPTIONS_FILE = path.join(REPO_ROOT, 'app', 'main', 'shell', 'window-options.ts');
/** The constructors, by name: the test below checks that window-options.ts exports no other function. */
const CONSTRUCTORS = { sessionWindowOptions: windowOptions.sessionWindowOptions, diagnosticsWindowOptions: windowOptions.diagnosticsWindowOptions };

interface Creation {
  /** `app/main/shell/x.ts:12` */
  readonly at: string;
  readonly window: string;
  /** Why it is refused, or null when it takes a constructor's options. */
  readonly refused: string | null;
}

/**
 * Every window creation in the project's files under app/, as the compiler sees them; `overlay`
 * adds or replaces files (absolute path -> text) without touching the disk.
 */
function windowCreations(overlay: Readonly<Record<string, string>> = {}): Creation[] {
  const api = new API({ cwd: REPO_ROOT, fs: overlayFileSystem(overlay) });
  try {
    const project = api.updateSnapshot({ openProject: path.join(REPO_ROOT, 'tsconfig.json') }).getProject(path.join(REPO_ROOT, 'tsconfig.json'));
    assert.ok(project, 'the compiler opened tsconfig.json');
    const appDir = `${path.join(REPO_ROOT, 'app')}${path.sep}`;
    const creations: Creation[] = [];
    for (const file of project.program.getSourceFileNames().filter((name) => name.startsWith(appDir))) {
      const source = project.program.getSourceFile(file);
      assert.ok(source, file);
      visit(source, (node) => {
        const found = inspect(node, project.checker);
        if (found) creations.push({ at: `${path.relative(REPO_ROOT, file)}:${lineOf(source, node)}`, ...found });
      });
    }
    return creations;
  } finally {
    api.close();
  }
}

function inspect(node: Node, checker: Checker): Omit<Creation, 'at'> | null {
  if (isClassLikeDeclaration(node)) {
    const window = windowClassOf(checker.getTypeAtLocation(node));
    return window ? { window, refused: `a subclass of ${window} (its constructor could pass anything)` } : null;
  }
  if (!isNewExpression(node)) return null;
  const window = windowClassOf(checker.getTypeAtLocation(node));
  if (!window) return null;
  const args = node.arguments ?? [];
  const [only] = args;
  if (args.length !== 1 || only === undefined || !isCallExpression(only)) return { window, refused: 'its options are not a call' };
  const callee = isPropertyAccessExpression(only.expression) ? only.expression.name : only.expression;
  const target = resolved(checker, checker.getSymbolAtLocation(callee));
  const fromOptions = target?.declarations.some((declaration) => path.resolve(declaration.path) === OPTIONS_FILE) ?? false;
  if (!fromOptions || !target || !Object.hasOwn(CONSTRUCTORS, target.name)) return { window, refused: `its options come from ${target?.name ?? 'an unknown function'}, not window-options.ts` };
  return { window, refused: null };
}

/** The Electron window class a type is, or extends (at any depth), or null. */
function windowClassOf(type: Type | undefined): string | null {
  if (!type) return null;
  const symbol = type.getSymbol();
  if (symbol && WINDOW_CLASSES.has(symbol.name) && symbol.declarations.some((d) => d.path.endsWith('/electron/electron.d.ts'))) return symbol.name;
  for (const base of type.getBaseTypes() ?? []) {
    const found = windowClassOf(base);
    if (found) return found;
  }
  return null;
}

function resolved(checker: Checker, symbol: TsSymbol | undefined): TsSymbol | undefined {
  return symbol && symbol.flags & SymbolFlags.Alias ? checker.getAliasedSymbol(symbol) : symbol;
}

function visit(node: Node, each: (node: Node) => void): void {
  each(node);
  node.forEachChild((child) => visit(child, each));
}

function lineOf(source: SourceFile, node: Node): number {
  return source.getLineAndCharacterOfPosition(node.getStart(source)).line + 1;
}

/** The real file system, with `overlay`'s files added (the compiler lists folders, then reads files). */
function overlayFileSystem(overlay: Readonly<Record<string, string>>): FileSystem {
  const added = (dir: string) => Object.keys(overlay).filter((file) => path.dirname(file) === dir);
  return {
    readFile: (file) => overlay[file],
    fileExists: (file) => (Object.hasOwn(overlay, file) ? true : undefined),
    getAccessibleEntries: (dir) => {
      if (added(dir).length === 0) return undefined;
      const entries = fs.readdirSync(dir, { withFileTypes: true });
      const files = new Set([...entries.filter((e) => e.isFile()).map((e) => e.name), ...added(dir).map((file) => path.basename(file))]);
      return { files: [...files], directories: entries.filter((e) => e.isDirectory()).map((e) => e.name) };
    },
  };
}

const PLANTED = path.join(REPO_ROOT, 'app', 'main', 'shell', 'planted-window.ts');
const PLANTED_TEXT = `import { BrowserWindow as Window, WebContentsView } from 'electron';
import * as options from './window-options.js';

const Alias = Window;
export const fine = new Alias(options.diagnosticsWindowOptions({ preload: 'p.cjs', icon: null, dark: false, development: false }));
export const literal = new Window({ webPreferences: { sandbox: false } });
export const cast = new Window(options.sessionWindowOptions() as never);
export const spread = new Alias({ ...options.diagnosticsWindowOptions({ preload: 'p.cjs', icon: null, dark: false, development: false }), show: true });
export const elsewhere = new WebContentsView(mine());
export class Roomier extends Window {}
function mine() { return { webPreferences: { nodeIntegration: true } }; }
`;

const creations = windowCreations({ [PLANTED]: PLANTED_TEXT });
const planted = path.relative(REPO_ROOT, PLANTED);

test('every window the app makes takes its options from window-options.ts', () => {
  const real = creations.filter((c) => !c.at.startsWith(`${planted}:`));
  // The check reads the real windows (not a vacuous pass): the session window and the diagnostics window.
  assert.deepEqual(real.map((c) => `${c.at.replace(/:\d+$/, '')} ${c.window}`).sort(), [
    'app/main/shell/diagnostics-window.ts BrowserWindow',
    'app/main/shell/session-window.ts BaseWindow',
  ]);
  assert.deepEqual(real.filter((c) => c.refused !== null), []);
});

test('the check refuses planted windows: literal, cast and spread options, another function, a subclass', () => {
  assert.deepEqual(
    creations.filter((c) => c.at.startsWith(`${planted}:`)).map((c) => `${c.at.slice(planted.length + 1)} ${c.window}: ${c.refused ?? 'ok'}`),
    [
      '5 BrowserWindow: ok',
      '6 BrowserWindow: its options are not a call',
      '7 BrowserWindow: its options are not a call',
      '8 BrowserWindow: its options are not a call',
      '9 WebContentsView: its options come from mine, not window-options.ts',
      '10 BrowserWindow: a subclass of BrowserWindow (its constructor could pass anything)',
    ],
  );
});

test('window-options.ts exports no constructor that the check and these tests do not know', () => {
  const functions = Object.entries(windowOptions).filter(([, value]) => typeof value === 'function').map(([name]) => name);
  assert.deepEqual(functions.sort(), Object.keys(CONSTRUCTORS).sort());
});

const RELEASE = { preload: '/app/preload.cjs', icon: null, dark: false, development: false } as const;

test('the secure web preferences: isolated, sandboxed, no Node anywhere, the web security model intact', () => {
  const prefs = windowOptions.SECURE_WEB_PREFERENCES;
  assert.equal(prefs.contextIsolation, true);
  assert.equal(prefs.sandbox, true);
  assert.equal(prefs.nodeIntegration, false);
  assert.equal(prefs.nodeIntegrationInWorker, false);
  assert.equal(prefs.nodeIntegrationInSubFrames, false);
  assert.equal(prefs.webSecurity, true);
  assert.equal(prefs.allowRunningInsecureContent, false);
  assert.equal(prefs.webviewTag, false);
  assert.equal(prefs.experimentalFeatures, false);
  assert.ok(Object.isFrozen(prefs), 'no window can change them for everyone');
});

test('the diagnostics window: the secure preferences unchanged, its preload and session, hidden until ready', () => {
  const options = windowOptions.diagnosticsWindowOptions(RELEASE);
  const prefs = options.webPreferences ?? {};
  for (const [key, value] of Object.entries(windowOptions.SECURE_WEB_PREFERENCES)) assert.equal(prefs[key as keyof typeof prefs], value, key);
  assert.equal(prefs.preload, RELEASE.preload);
  assert.equal(prefs.partition, windowOptions.DIAGNOSTICS_PARTITION);
  assert.doesNotMatch(windowOptions.DIAGNOSTICS_PARTITION, /^persist:/, 'an in-memory session');
  assert.equal(prefs.devTools, false, 'no developer tools in a release');
  assert.equal(windowOptions.diagnosticsWindowOptions({ ...RELEASE, development: true }).webPreferences?.devTools, true);
  assert.equal(options.show, false);
  assert.deepEqual([options.width, options.height, options.minWidth, options.minHeight], [900, 700, 640, 480]);
  assert.equal(options.backgroundColor, windowOptions.PAGE_BACKGROUND.light);
  assert.equal(windowOptions.diagnosticsWindowOptions({ ...RELEASE, dark: true }).backgroundColor, windowOptions.PAGE_BACKGROUND.dark);
  assert.equal('icon' in options, false);
  assert.equal(windowOptions.diagnosticsWindowOptions({ ...RELEASE, icon: '/icons/a.ico' }).icon, '/icons/a.ico');
});

test('the session window: a BaseWindow (no page, so no web preferences), never shown or focused', () => {
  const options = windowOptions.sessionWindowOptions();
  assert.equal('webPreferences' in options, false);
  assert.equal(options.show, false);
  assert.equal(options.focusable, false);
  assert.equal(options.skipTaskbar, true);
});
