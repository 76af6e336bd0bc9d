/**
 * The icon build (tools/build/icons.ts) run for real into a temporary folder, its files read back:
 * the ICO's directory parsed by hand (ICONDIR, 6 bytes, then one 16-byte ICONDIRENTRY per image),
 * PNGs measured with sharp, template PNGs checked pixel by pixel. And the files the shell loads
 * (app-files.ts) exist, in that output and in the app's own build.
 */
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { test } from 'node:test';
import sharp from 'sharp';
import { appFiles, trayIconFile, windowIconFile } from '../../app/main/shell/app-files.js';
import { PAGE_FILES } from '../../app/common/diagnostics.js';
import type { TrayIconState } from '../../app/main/shell/tray-menu.js';
import { buildIcons, ICON_STATES, LINUX_SIZES, MACOS_SIZE, WINDOWS_SIZES } from '../../tools/build/icons.js';
import { DIST, REPO_ROOT, tempDir } from '../helpers/paths.js';

const SOURCE = path.join(REPO_ROOT, 'assets', 'icons');
const PLATFORMS = ['win32', 'darwin', 'linux'] as const;

/** The sizes an ICO's directory lists (a width byte of 0 means 256), after checking its header. */
function icoSizes(file: Buffer): number[] {
  assert.equal(file.readUInt16LE(0), 0, 'ICONDIR reserved');
  assert.equal(file.readUInt16LE(2), 1, 'ICONDIR type: icon');
  const count = file.readUInt16LE(4);
  assert.ok(file.length >= 6 + 16 * count, 'the directory fits the file');
  return Array.from({ length: count }, (_, i) => {
    const entry = 6 + 16 * i;
    const [width, height] = [file.readUInt8(entry) || 256, file.readUInt8(entry + 1) || 256];
    assert.equal(width, height, 'square');
    assert.equal(file.readUInt16LE(entry + 6), 32, '32 bits per pixel (alpha)');
    const [bytes, offset] = [file.readUInt32LE(entry + 8), file.readUInt32LE(entry + 12)];
    assert.ok(offset >= 6 + 16 * count && offset + bytes <= file.length, `image ${i} lies inside the file`);
    return width;
  });
}

async function dimensions(file: string): Promise<[number, number]> {
  const { width, height } = await sharp(file).metadata();
  return [width, height];
}

test('the icons, each state in each format, from the one drawing', async (t) => {
  const out = tempDir(t);
  await buildIcons(SOURCE, out);

  for (const state of ICON_STATES) {
    const ico = fs.readFileSync(path.join(out, 'win32', `tray-${state}.ico`));
    assert.deepEqual(icoSizes(ico).sort((a, b) => a - b), [...WINDOWS_SIZES], `${state}.ico`);

    for (const size of LINUX_SIZES) {
      const file = path.join(out, 'linux', `tray-${state}-${size}.png`);
      assert.deepEqual(await dimensions(file), [size, size], file);
      assert.equal((await sharp(file).metadata()).hasAlpha, true, file);
    }

    for (const [name, size] of [[`tray-${state}Template.png`, MACOS_SIZE], [`tray-${state}Template@2x.png`, 2 * MACOS_SIZE]] as const) {
      const file = path.join(out, 'darwin', name);
      const { data, info } = await sharp(file).raw().toBuffer({ resolveWithObject: true });
      assert.deepEqual([info.width, info.height, info.channels], [size, size, 4], file);
      let inked = 0;
      for (let pixel = 0; pixel < data.length; pixel += 4) {
        assert.deepEqual([data[pixel], data[pixel + 1], data[pixel + 2]], [0, 0, 0], `${name}: black only, at pixel ${pixel / 4}`);
        if ((data[pixel + 3] ?? 0) > 0) inked++;
      }
      assert.ok(inked > size * size * 0.25 && inked < size * size * 0.95, `${name}: a drawing in alpha (${inked} of ${size * size} pixels inked)`);
    }
  }
});

test('the states look different: each badge changes the pixels where it sits', async (t) => {
  const out = tempDir(t);
  await buildIcons(SOURCE, out);
  const pixels = (state: TrayIconState) => sharp(path.join(out, 'linux', `tray-${state}-32.png`)).raw().toBuffer();
  const [idle, updating, error] = await Promise.all(ICON_STATES.map(pixels));
  const differing = (a: Buffer, b: Buffer) => a.reduce((count, byte, i) => count + (byte === b[i] ? 0 : 1), 0);
  assert.ok(idle && updating && error);
  assert.ok(differing(idle, updating) > 100, 'updating differs from idle');
  assert.ok(differing(idle, error) > 100, 'error differs from idle');
  assert.ok(differing(updating, error) > 50, 'error differs from updating');
});

test('every icon the shell loads is made by the build, and the app build has the page, the preload and the icons', async (t) => {
  const out = tempDir(t);
  await buildIcons(SOURCE, out);
  const named = PLATFORMS.flatMap((platform) => [...ICON_STATES.map((state) => trayIconFile(platform, state)), windowIconFile(platform)]).filter((file) => file !== null);
  for (const file of named) assert.ok(fs.existsSync(path.join(out, file)), `${file} is built`);

  const files = appFiles(DIST);
  assert.ok(fs.statSync(files.preload).isFile(), files.preload);
  for (const name of Object.keys(PAGE_FILES)) assert.ok(fs.statSync(path.join(files.renderer, name)).isFile(), `${name} is in ${files.renderer}`);
  for (const file of named) assert.ok(fs.existsSync(path.join(files.icons, file)), `${file} is in ${files.icons}`);
});
