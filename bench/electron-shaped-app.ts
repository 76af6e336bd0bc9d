import { type Cipheriv, createCipheriv, createHash } from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { finished } from 'node:stream/promises';
import { createPackageWithOptions, getRawHeader } from '@electron/asar';

/**
 * A deterministic application shaped like Outpost's Windows x64 build by electron-builder 26 (78 files,
 * ~208 MB: a 92 MiB Outpost.exe, a 27 MB resources/app.asar, Chromium's .pak/.dll/.dat files), for the
 * update benchmarks: bytes on the wire are only meaningful on files that are laid out, change and
 * compress like the real ones. Every byte comes from AES-256-CTR keystreams seeded by file name, so a
 * variant differs from another exactly where a real release would: package.json, one line of
 * main.js, or one image inside the asar (with the asar header's sizes, offsets and hashes after it),
 * and the asar header's hash that electron-builder stamps into the executable.
 */

export interface ElectronAppVariant {
  /** package.json "version" inside app.asar (a version bump changes only this). */
  readonly version: string;
  /** Revision of one line of app/main/main.js inside the asar: 0 = original; n changes that line's text (and length). */
  readonly mainJsRevision: number;
  /** Revision of one 100 KiB image inside the asar (incompressible): 0 = original; n replaces it with other bytes of the same size. */
  readonly imageRevision: number;
}

export interface ElectronAppOptions {
  /** 1 = the full 208 MB app; 0.1 etc. scales every file size (down to 4 KiB at least) for quick runs. Default 1. */
  readonly scale?: number;
}

export interface BuiltApp {
  readonly files: number;
  readonly bytes: number;
  readonly asarBytes: number;
  readonly exeBytes: number;
}

export const BASE_VARIANT: ElectronAppVariant = Object.freeze({ version: '1.0.0', mainJsRevision: 0, imageRevision: 0 });

const KIB = 1024;
const MIB = 1024 * KIB;
/** Files are generated and written in blocks of this size: no big file is ever held in memory. */
const BLOCK = MIB;
const ZEROS = Buffer.alloc(BLOCK);
/** A scaled file keeps at least this size (or its full size if smaller), so quick runs keep every file. */
const MIN_SCALED = 4 * KIB;

/** Pseudo-random bytes and numbers from AES-256-CTR over zeros: deterministic per seed, and ~1 GB/s where a JS generator would crawl. */
class Keystream {
  readonly #cipher: Cipheriv;
  #numbers: Buffer = Buffer.alloc(0);
  #at = 0;

  constructor(seed: string) {
    this.#cipher = createCipheriv('aes-256-ctr', createHash('sha256').update(seed).digest(), Buffer.alloc(16));
  }

  /** `n` bytes, n at most BLOCK. */
  bytes(n: number): Buffer {
    return this.#cipher.update(ZEROS.subarray(0, n));
  }

  /** An integer in [0, n). */
  below(n: number): number {
    if (this.#at + 4 > this.#numbers.length) {
      this.#numbers = this.bytes(16 * KIB);
      this.#at = 0;
    }
    const value = this.#numbers.readUInt32LE(this.#at);
    this.#at += 4;
    return value % n;
  }

  pick<T>(items: readonly T[]): T {
    return items[this.below(items.length)] as T;
  }
}

const WORDS = (
  'agent update session token config state error request response handler window tray status version storage lock socket pipe ' +
  'secret report backend feed metadata target blob download verify stage journal health rollback circuit breaker install swap ' +
  'backup restore timer retry delay limit queue event listener channel message payload buffer stream chunk offset length index ' +
  'value result options context logger level format path file folder record entry item list map set cache key hash digest ' +
  'signature proxy connection client server route query header cookie policy scope user machine elevated service process child ' +
  'exit code signal timeout interval idle ready start stop close open read write flush sync parse render view model store action ' +
  'selector effect component element node text style theme color layout grid panel button dialog menu icon image font asset ' +
  'bundle module loader worker thread task job schedule plan step phase mode flag option default custom local remote primary ' +
  'secondary current previous next first last total count size width height'
).split(' ');

function capitalized(word: string): string {
  return word.charAt(0).toUpperCase() + word.slice(1);
}

function sentence(rng: Keystream): string {
  const words: string[] = [];
  for (let n = 4 + rng.below(10); n > 0; n--) words.push(rng.pick(WORDS));
  return `${capitalized(words.join(' '))}.`;
}

/** English-like text of at least `bytes` characters (zstd: ~4x). */
function prose(rng: Keystream, bytes: number): string {
  const parts: string[] = [];
  for (let length = 0; length < bytes; ) {
    const part = sentence(rng) + (rng.below(6) === 0 ? '\n\n' : ' ');
    parts.push(part);
    length += part.length;
  }
  return parts.join('');
}

/**
 * JavaScript of at least `bytes` characters: functions from templates over a pool of names per file,
 * reused as real modules reuse theirs (zstd: ~3.5x). `extraLine` goes between two functions at 40%.
 */
function jsSource(seed: string, bytes: number, extraLine?: string): string {
  const rng = new Keystream(seed);
  const fresh = (): string => {
    let name = rng.pick(WORDS);
    for (let n = rng.below(3); n > 0; n--) name += capitalized(rng.pick(WORDS));
    return name;
  };
  const pool = Array.from({ length: 64 }, fresh);
  const name = (): string => (rng.below(10) === 0 ? fresh() : rng.pick(pool));
  const literal = (): string => {
    switch (rng.below(4)) {
      case 0: return String(rng.below(10));
      case 1: return String(rng.below(100_000));
      case 2: return `0x${rng.below(0xffffff).toString(16)}`;
      default: return `'${sentence(rng)}'`;
    }
  };
  const expr = (depth: number): string => {
    switch (rng.below(depth > 1 ? 2 : 6)) {
      case 0: return name();
      case 1: return literal();
      case 2: return `${name()}.${name()}(${expr(depth + 1)})`;
      case 3: return `${expr(depth + 1)} ${rng.pick(['+', '===', '!==', '&&', '||', '??', '<'])} ${expr(depth + 1)}`;
      case 4: return `{ ${name()}: ${expr(depth + 1)}, ${name()}: ${expr(depth + 1)} }`;
      default: return `[${expr(depth + 1)}, ${expr(depth + 1)}]`;
    }
  };
  const statement = (indent: string): string => {
    switch (rng.below(8)) {
      case 0: return `${indent}const ${name()} = ${expr(0)};`;
      case 1: return `${indent}let ${name()} = ${expr(0)};`;
      case 2: return `${indent}${name()}.${name()}(${expr(0)});`;
      case 3: return `${indent}if (${expr(1)}) {\n${statement(`${indent}  `)}\n${indent}}`;
      case 4: return `${indent}logger.${rng.pick(['info', 'warn', 'error'])}(\`${sentence(rng)} \${${name()}}\`);`;
      case 5: return `${indent}for (const ${name()} of ${name()}) {\n${statement(`${indent}  `)}\n${indent}}`;
      case 6: return `${indent}return ${expr(0)};`;
      default: return `${indent}this.${name()} = ${expr(0)};`;
    }
  };
  const parts = [`import { ${name()}, ${name()} } from './${rng.pick(WORDS)}.js';\nimport { logger } from '../logger.js';\n`];
  let pending = extraLine;
  for (let length = 0; length < bytes; ) {
    if (pending !== undefined && length >= bytes * 0.4) {
      parts.push(pending);
      pending = undefined;
    }
    const body = Array.from({ length: 2 + rng.below(10) }, () => statement('  '));
    const doc = rng.below(3) === 0 ? `/** ${sentence(rng)} */\n` : '';
    const fn = `${doc}${rng.pick(['function', 'async function', 'export function'])} ${name()}(${name()}, ${name()}) {\n${body.join('\n')}\n}\n`;
    parts.push(fn);
    length += fn.length + 1;
  }
  return parts.join('\n');
}

/**
 * Shares of a binary file's runs by kind; the rest is zero padding with sparse values (~0.03). Uniform
 * bytes through CODE_BYTES compress to ~0.55 with zstd -3, random ones not at all, prose to ~0.25.
 */
interface Mix {
  readonly code: number;
  readonly random: number;
  readonly text: number;
}
/** Executables and DLLs: ~0.45 with zstd -3, like Electron's. */
const EXE: Mix = { code: 0.55, random: 0.1, text: 0.2 };
/** ICU data, V8 snapshots, fonts: tables and strings. */
const DATA: Mix = { code: 0.45, random: 0.05, text: 0.35 };
/** resources.pak: half already-compressed web resources. */
const PAK: Mix = { code: 0.1, random: 0.5, text: 0.35 };
/** locales/*.pak: strings. */
const LOCALE: Mix = { code: 0, random: 0.05, text: 0.9 };
/** chrome_*_percent.pak, images: PNGs. */
const IMAGES: Mix = { code: 0, random: 0.95, text: 0.05 };
const RANDOM: Mix = { code: 0, random: 1, text: 0 };

/**
 * Machine code's bytes are skewed (0x00, 0xFF, REX prefixes, MOV, CALL...): table index i gets rank
 * k of a geometric distribution (ratio 0.85), the ranks the commonest x64 opcode bytes.
 */
const CODE_BYTES = (() => {
  const common = [0x00, 0xff, 0x48, 0x89, 0x8b, 0xe8, 0x0f, 0x24, 0x44, 0x4c, 0x85, 0xc0, 0x74, 0x75, 0x83, 0xc3, 0x01, 0x10, 0x08, 0x20, 0x41, 0x45, 0x8d, 0x33, 0xeb];
  const table = new Uint8Array(256);
  for (let i = 0; i < 256; i++) {
    const rank = Math.floor(Math.log(1 - (i + 0.5) / 256) / Math.log(0.85));
    table[i] = common[rank] ?? (rank * 37 + 11) & 0xff;
  }
  return table;
})();

/** Fills `block` with runs of 4-64 KiB, each of one kind drawn by `mix`. */
function fillBinary(rng: Keystream, block: Buffer, mix: Mix): void {
  for (let at = 0; at < block.length; ) {
    const run = block.subarray(at, at + (4 + rng.below(61)) * KIB);
    const roll = rng.below(1000) / 1000;
    if (roll < mix.code) {
      const bytes = rng.bytes(run.length);
      for (let i = 0; i < run.length; i++) run[i] = CODE_BYTES[bytes[i] as number] as number;
    } else if (roll < mix.code + mix.random) {
      rng.bytes(run.length).copy(run);
    } else if (roll < mix.code + mix.random + mix.text) {
      run.write(prose(rng, run.length), 'latin1');
    } else {
      run.fill(0);
      const values = rng.bytes(Math.floor(run.length / 32));
      for (let i = 0; i < values.length; i += 8) values.copy(run, i * 32, i, i + 8);
    }
    at += run.length;
  }
}

/** Writes `size` bytes of `mix` to `file`, with `patch` (a file signature, the integrity stamp) laid over them at its offset. */
function writeBinary(file: string, size: number, seed: string, mix: Mix, patch?: { offset: number; bytes: Buffer }): void {
  const rng = new Keystream(seed);
  fs.mkdirSync(path.dirname(file), { recursive: true });
  const fd = fs.openSync(file, 'wx');
  try {
    const block = Buffer.allocUnsafe(Math.min(BLOCK, size));
    for (let offset = 0; offset < size; offset += BLOCK) {
      const part = block.subarray(0, Math.min(BLOCK, size - offset));
      fillBinary(rng, part, mix);
      if (patch) {
        const from = Math.max(patch.offset, offset);
        const to = Math.min(patch.offset + patch.bytes.length, offset + part.length);
        if (from < to) patch.bytes.copy(part, from - offset, from - patch.offset, to - patch.offset);
      }
      fs.writeSync(fd, part);
    }
  } finally {
    fs.closeSync(fd);
  }
}

/** Writes `head`, text pieces from `next` until about `size` bytes, then `tail`, a megabyte at a time. */
function writeText(file: string, size: number, next: () => string, [head, tail]: readonly [string, string]): void {
  fs.mkdirSync(path.dirname(file), { recursive: true });
  const fd = fs.openSync(file, 'wx');
  try {
    let pending = [head];
    let buffered = head.length;
    for (let written = 0; written < size; ) {
      const piece = next();
      pending.push(piece);
      buffered += piece.length;
      written += piece.length;
      if (buffered >= BLOCK || written >= size) {
        fs.writeSync(fd, pending.join(''));
        pending = [];
        buffered = 0;
      }
    }
    fs.writeSync(fd, tail);
  } finally {
    fs.closeSync(fd);
  }
}

/** `count` sizes of about `total` bytes in all, uneven (0.3x to 1.7x the mean) as real files are. */
function sizes(seed: string, count: number, total: number): number[] {
  const rng = new Keystream(`sizes:${seed}`);
  const weights = Array.from({ length: count }, () => 0.3 + rng.below(1401) / 1000);
  const sum = weights.reduce((a, b) => a + b, 0);
  return weights.map((weight) => Math.round((total * weight) / sum));
}

const LOCALES = [
  'af', 'am', 'ar', 'bg', 'bn', 'ca', 'cs', 'da', 'de', 'el', 'en-GB', 'en-US', 'es-419', 'es', 'et', 'fa', 'fi', 'fil', 'fr',
  'gu', 'he', 'hi', 'hr', 'hu', 'id', 'it', 'ja', 'kn', 'ko', 'lt', 'lv', 'ml', 'mr', 'ms', 'nb', 'nl', 'pl', 'pt-BR', 'pt-PT',
  'ro', 'ru', 'sk', 'sl', 'sr', 'sv', 'sw', 'ta', 'te', 'th', 'tr', 'uk', 'ur', 'vi', 'zh-CN', 'zh-TW',
];

/** Electron's binaries beside Outpost.exe, at their sizes in Electron's Windows x64 build. */
const BINARIES: ReadonlyArray<readonly [string, number, Mix]> = [
  ['resources.pak', 5 * MIB, PAK],
  ['icudtl.dat', 10 * MIB, DATA],
  ['libGLESv2.dll', 7 * MIB, EXE],
  ['ffmpeg.dll', 2.8 * MIB, EXE],
  ['d3dcompiler_47.dll', 4.7 * MIB, EXE],
  ['vk_swiftshader.dll', 5 * MIB, EXE],
  ['libEGL.dll', 470 * KIB, EXE],
  ['vulkan-1.dll', 900 * KIB, EXE],
  ['v8_context_snapshot.bin', 700 * KIB, DATA],
  ['snapshot_blob.bin', 300 * KIB, DATA],
  ['chrome_100_percent.pak', 150 * KIB, IMAGES],
  ['chrome_200_percent.pak', 220 * KIB, IMAGES],
  ['resources/elevate.exe', 105 * KIB, EXE],
  ['resources/updater/outpost-updater.exe', 8 * MIB, EXE],
];
const LOCALES_TOTAL = 24 * MIB;
const EXE_SIZE = 92 * MIB;

/** The JavaScript inside the asar (~5 MiB in ~300 files): folder, file count, total bytes. */
const JS_GROUPS: ReadonlyArray<readonly [string, number, number]> = [
  ['app/main/core', 24, 640 * KIB],
  ['app/main/update', 16, 420 * KIB],
  ['app/main/platform/win32', 12, 260 * KIB],
  ['app/main/platform/posix', 10, 200 * KIB],
  ['app/preload', 6, 60 * KIB],
  ['app/common', 30, 300 * KIB],
  ['app/renderer/assets', 30, 1472 * KIB],
  ['app/renderer/components', 60, 700 * KIB],
  ['app/renderer/views/settings', 20, 240 * KIB],
  ...['react-dom', 'scheduler', 'zod', 'semver', 'axios', 'ws', 'tuf-js', 'electron-log'].map((pkg) => [`app/vendor/${pkg}/lib`, 12, 88 * KIB] as const),
];
const MAIN_JS = 'app/main/main.js';
const MAIN_JS_SIZE = 64 * KIB;
/** The assets inside the asar (~21 MiB): folder, extension, file count, total bytes. */
const ASSET_GROUPS: ReadonlyArray<readonly [string, string, number, number]> = [
  ['assets/images', 'png', 60, 11 * MIB],
  ['assets/images/photos', 'jpg', 16, 5 * MIB],
  ['assets/fonts', 'ttf', 8, 3 * MIB],
  ['assets/i18n', 'json', 24, MIB],
  ['assets/icons', 'svg', 80, 0.9 * MIB],
];
const NATIVE_PACKAGES: ReadonlyArray<readonly [string, string, number]> = [
  ['@napi-rs/keyring', 'keyring.win32-x64-msvc.node', 1.1 * MIB],
  ['@yuuang/ffi-rs', 'ffi-rs.win32-x64-msvc.node', 0.9 * MIB],
];
const CHANGING_IMAGE = 'assets/images/hero-banner.png';
const PNG_MAGIC = Buffer.from('89504e470d0a1a0a0000000d49484452', 'hex');
const JPG_MAGIC = Buffer.from('ffd8ffe000104a46494600', 'hex');
const SVG_HEAD = '<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 24 24" fill="currentColor">\n';
const CREDITS_HEAD = '<!DOCTYPE html>\n<html>\n<head>\n<meta charset="utf-8">\n<title>Credits</title>\n<style>.product { margin: 1em 0; }</style>\n</head>\n<body>\n';

/** The asar's source folder: package.json, the JavaScript, the assets, and the unpacked native packages' package.json. */
function writeAsarSource(dir: string, variant: ElectronAppVariant, scaled: (bytes: number) => number): void {
  const at = (file: string) => path.join(dir, file);
  fs.writeFileSync(at('package.json'), `${JSON.stringify({ name: 'outpost', productName: 'Outpost', version: variant.version, main: MAIN_JS, license: 'UNLICENSED' }, null, 2)}\n`);
  // A real one-line change: the line's length changes too, so every later file's offset moves.
  const revision = variant.mainJsRevision;
  const revisionLine = `const HEARTBEAT_INTERVAL_MS = ${revision === 0 ? '30_000;' : `30_000 + ${revision} * 5_000; // revision ${revision}`}\n`;
  fs.mkdirSync(path.dirname(at(MAIN_JS)), { recursive: true });
  fs.writeFileSync(at(MAIN_JS), jsSource(MAIN_JS, scaled(MAIN_JS_SIZE), revisionLine));
  for (const [folder, count, total] of JS_GROUPS) {
    fs.mkdirSync(at(folder), { recursive: true });
    sizes(folder, count, total).forEach((size, i) => {
      const file = `${folder}/${WORDS[(i * 7 + folder.length) % WORDS.length]}-${i}.js`;
      fs.writeFileSync(at(file), jsSource(file, scaled(size)));
    });
  }
  for (const [folder, ext, count, total] of ASSET_GROUPS) {
    sizes(folder, count, total).forEach((size, i) => {
      const name = `${folder}/${WORDS[(i * 11 + ext.length) % WORDS.length]}-${i}.${ext}`;
      const file = at(name);
      const rng = new Keystream(name);
      const point = () => rng.below(2400) / 100;
      if (ext === 'png' || ext === 'jpg') writeBinary(file, scaled(size), name, RANDOM, { offset: 0, bytes: ext === 'png' ? PNG_MAGIC : JPG_MAGIC });
      else if (ext === 'ttf') writeBinary(file, scaled(size), name, DATA);
      else if (ext === 'json') writeText(file, scaled(size), () => `  "${rng.pick(WORDS)}.${rng.pick(WORDS)}.${rng.pick(WORDS)}": "${sentence(rng)}",\n`, ['{\n', '  "end": ""\n}\n']);
      else writeText(file, scaled(size), () => `  <path d="M${point()} ${point()}L${point()} ${point()}L${point()} ${point()}Z"/>\n`, [SVG_HEAD, '</svg>\n']);
    });
  }
  // The one image a release replaces: its size stays, its bytes (and its integrity hash in the header) change.
  writeBinary(at(CHANGING_IMAGE), scaled(100 * KIB), `${CHANGING_IMAGE}#${variant.imageRevision}`, RANDOM, { offset: 0, bytes: PNG_MAGIC });
  // asarUnpack: node_modules/** (electron-builder.yml): the native packages are listed in the header
  // ("unpacked": true, with their hashes) and lie beside the archive in app.asar.unpacked.
  for (const [pkg, binary, size] of NATIVE_PACKAGES) {
    const folder = `node_modules/${pkg}-win32-x64-msvc`;
    fs.mkdirSync(at(folder), { recursive: true });
    fs.writeFileSync(at(`${folder}/package.json`), `${JSON.stringify({ name: `${pkg}-win32-x64-msvc`, version: '1.0.0', os: ['win32'], cpu: ['x64'], main: binary }, null, 2)}\n`);
    writeBinary(at(`${folder}/${binary}`), scaled(size), `${folder}/${binary}`, EXE);
  }
}

/**
 * A LICENSES.chromium.html-like page: products with a notice of their own and, for 60% of them, one of
 * 48 shared licence texts (the real page repeats MIT, BSD and Apache hundreds of times; zstd: ~8x).
 */
function licensesPage(rng: Keystream): () => string {
  const licences = Array.from({ length: 48 }, () => prose(rng, 2_000 + rng.below(10_000)));
  let id = 0;
  return () => {
    const product = `${rng.pick(WORDS)}-${rng.pick(WORDS)}`;
    id++;
    return (
      `<div class="product">\n<span class="title">${product}</span>\n<span class="homepage"><a href="https://${rng.pick(WORDS)}.example.org/${product}">homepage</a></span>\n` +
      `<input type="checkbox" hidden id="${id}">\n<label class="show" for="${id}" tabindex="0"></label>\n<div class="licence">\n<pre>Copyright ${2000 + rng.below(26)} The ${capitalized(product)} Authors. All rights reserved.\n${prose(rng, 100 + rng.below(600))}\n${rng.below(10) < 6 ? rng.pick(licences) : prose(rng, 1_000 + rng.below(7_000))}</pre>\n</div>\n</div>\n`
    );
  };
}

const ELECTRON_LICENSE =
  'Copyright (c) Electron contributors\nCopyright (c) 2013-2020 GitHub Inc.\n\nPermission is hereby granted, free of charge, to any person obtaining a copy of this ' +
  'software and associated documentation files (the "Software"), to deal in the Software without restriction, including without limitation the rights to use, ' +
  'copy, modify, merge, publish, distribute, sublicense, and/or sell copies of the Software, and to permit persons to whom the Software is furnished to do so, ' +
  'subject to the following conditions:\n\nThe above copyright notice and this permission notice shall be included in all copies or substantial portions of ' +
  'the Software.\n\nTHE SOFTWARE IS PROVIDED "AS IS", WITHOUT WARRANTY OF ANY KIND, EXPRESS OR IMPLIED.\n';

function totals(dir: string): { files: number; bytes: number } {
  let files = 0;
  let bytes = 0;
  for (const entry of fs.readdirSync(dir, { recursive: true, withFileTypes: true })) {
    if (!entry.isFile()) continue;
    files++;
    bytes += fs.statSync(path.join(entry.parentPath, entry.name)).size;
  }
  return { files, bytes };
}

/** Writes the app into outDir (created; must not exist or be empty). Same variant + options => byte-identical output. */
export async function buildElectronShapedApp(outDir: string, variant: ElectronAppVariant, options: ElectronAppOptions = {}): Promise<BuiltApp> {
  const scale = options.scale ?? 1;
  if (!(scale > 0 && Number.isFinite(scale))) throw new Error(`scale must be a positive number (1 = the full 208 MB app), not ${scale}`);
  if (fs.existsSync(outDir) && fs.readdirSync(outDir).length > 0) throw new Error(`${outDir} is not empty: give buildElectronShapedApp a new or empty folder`);
  const scaled = (bytes: number) => Math.max(Math.min(bytes, MIN_SCALED), Math.round(bytes * scale));
  const at = (file: string) => path.join(outDir, file);
  fs.mkdirSync(outDir, { recursive: true });

  // The asar first: the executable carries its header's hash. Files are written with mode 0644
  // (no "executable" flag in the header) and packed in glob's sorted order, so packing is repeatable.
  const asarPath = at('resources/app.asar');
  const source = fs.mkdtempSync(path.join(os.tmpdir(), 'outpost-electron-app-'));
  try {
    writeAsarSource(source, variant, scaled);
    await finished(await createPackageWithOptions(source, asarPath, { unpackDir: 'node_modules' }));
  } finally {
    fs.rmSync(source, { recursive: true, force: true });
  }

  // electron-builder hashes the header string and writes [{file, alg, value}] into the executable's
  // INTEGRITY/ELECTRONASAR resource, which lies near the end of the file (the .rsrc section).
  const hash = createHash('sha256').update(getRawHeader(asarPath).headerString).digest('hex');
  const stamp = Buffer.from(JSON.stringify([{ file: 'resources\\app.asar', alg: 'SHA256', value: hash }]));
  const exeSize = scaled(EXE_SIZE);
  writeBinary(at('Outpost.exe'), exeSize, 'Outpost.exe', EXE, { offset: Math.max(0, exeSize - Math.min(40 * KIB, Math.floor(exeSize / 2))), bytes: stamp });

  for (const [file, size, mix] of BINARIES) writeBinary(at(file), scaled(size), file, mix);
  sizes('locales', LOCALES.length, LOCALES_TOTAL).forEach((size, i) => {
    const file = `locales/${LOCALES[i]}.pak`;
    writeBinary(at(file), scaled(size), file, LOCALE);
  });
  const licenses = new Keystream('LICENSES.chromium.html');
  writeText(at('LICENSES.chromium.html'), scaled(9 * MIB), licensesPage(licenses), [CREDITS_HEAD, '</body>\n</html>\n']);
  fs.writeFileSync(at('LICENSE.electron.txt'), ELECTRON_LICENSE);
  fs.writeFileSync(at('vk_swiftshader_icd.json'), '{"file_format_version": "1.0.0", "ICD": {"library_path": ".\\\\vk_swiftshader.dll", "api_version": "1.0.5"}}');

  return { ...totals(outDir), asarBytes: fs.statSync(asarPath).size, exeBytes: exeSize };
}
