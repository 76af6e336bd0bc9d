/**
 * The tray icons, in each OS's formats, from one drawing (assets/icons/outpost.svg) rendered at every
 * size it is needed in (never a large bitmap scaled down, which blurs at 16 px):
 *   win32/tray-<state>.ico                      16, 20, 24, 32, 48, 64 and 256 px in one file (the
 *                                               notification area takes 16 at 100 % scale, 20, 24, 32 above)
 *   darwin/tray-<state>Template.png and @2x     16 and 32 px, black and alpha only: the menu bar paints
 *                                               a template image in its own colours
 *   linux/tray-<state>-<size>.png               22, 24, 32, 48 and 64 px
 * sharp (librsvg) draws the SVG; png-to-ico packs the Windows sizes.
 */
import fs from 'node:fs';
import path from 'node:path';
import pngToIco from 'png-to-ico';
import sharp from 'sharp';

export const ICON_SOURCE = 'outpost.svg';
/** The drawing's states: each shows its badge (`.badge-<state>`) and the gap cut around it (`.badge-room`). */
export const ICON_STATES = ['idle', 'updating', 'error'] as const;
export type IconState = (typeof ICON_STATES)[number];

export const WINDOWS_SIZES = [16, 20, 24, 32, 48, 64, 256] as const;
export const MACOS_SIZE = 16;
export const LINUX_SIZES = [22, 24, 32, 48, 64] as const;

/** The drawing's own size (its viewBox): the density that renders it at `size` px is proportional. */
const DRAWN_AT = 16;
const SVG_DENSITY = 72;

export async function buildIcons(sourceDir: string, outDir: string): Promise<void> {
  const drawing = fs.readFileSync(path.join(sourceDir, ICON_SOURCE), 'utf8');
  for (const dir of ['win32', 'darwin', 'linux']) fs.mkdirSync(path.join(outDir, dir), { recursive: true });
  for (const state of ICON_STATES) {
    const colour = variant(drawing, state, false);
    const template = variant(drawing, state, true);
    const ico = await pngToIco(await Promise.all(WINDOWS_SIZES.map((size) => render(colour, size))));
    fs.writeFileSync(path.join(outDir, 'win32', `tray-${state}.ico`), ico);
    fs.writeFileSync(path.join(outDir, 'darwin', `tray-${state}Template.png`), await blackAndAlpha(await render(template, MACOS_SIZE)));
    fs.writeFileSync(path.join(outDir, 'darwin', `tray-${state}Template@2x.png`), await blackAndAlpha(await render(template, 2 * MACOS_SIZE)));
    for (const size of LINUX_SIZES) fs.writeFileSync(path.join(outDir, 'linux', `tray-${state}-${size}.png`), await render(colour, size));
  }
}

/**
 * The drawing with one state's badge shown, in colour or as a template (every shape black). The
 * rules are appended after the drawing's own stylesheet, so they win over its defaults.
 */
export function variant(drawing: string, state: IconState, template: boolean): string {
  const badge = state === 'idle' ? '' : `.badge-${state}, .badge-room { display: inline; }`;
  const ink = template ? '.tile, .badge-updating, .badge-error { fill: #000; }' : '';
  const end = drawing.lastIndexOf('</svg>');
  if (end < 0) throw new Error(`${ICON_SOURCE} is not an SVG document (no </svg>)`);
  return `${drawing.slice(0, end)}<style>${badge}${ink}</style>${drawing.slice(end)}`;
}

function render(svg: string, size: number): Promise<Buffer> {
  return sharp(Buffer.from(svg), { density: (SVG_DENSITY * size) / DRAWN_AT })
    .resize(size, size)
    .png()
    .toBuffer();
}

/**
 * A template PNG keeps only the alpha of the rendering, on pure black: anti-aliased edges come out
 * of librsvg unpremultiplied, and a stray grey would show as a tint in the menu bar.
 */
async function blackAndAlpha(png: Buffer): Promise<Buffer> {
  const image = sharp(png);
  const { width, height } = await image.metadata();
  const alpha = await image.ensureAlpha().extractChannel('alpha').raw().toBuffer();
  return sharp({ create: { width, height, channels: 3, background: '#000000' } })
    .joinChannel(alpha, { raw: { width, height, channels: 1 } })
    .png()
    .toBuffer();
}
