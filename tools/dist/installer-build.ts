/** What `npm run dist` asks of each installer's builder (nsis.ts, inno.ts), and what it gets back. */
export interface InstallerOptions {
  readonly repoRoot: string;
  /** The packaged app: electron-builder's `win-unpacked/` (Outpost.exe, resources/). */
  readonly appDir: string;
  /** Where the installer goes (made when missing). */
  readonly outDir: string;
  readonly version: string;
  /** `release`: LZMA, solid (the smallest installer; minutes for the app's 186 MB); `fast`: stored, for tests. */
  readonly compression: 'release' | 'fast';
  /** Apps & features' publisher (default: Outpost). */
  readonly publisher?: string | undefined;
  readonly log: (line: string) => void;
}

export interface BuiltInstaller {
  readonly file: string;
  readonly bytes: number;
  readonly ms: number;
}
