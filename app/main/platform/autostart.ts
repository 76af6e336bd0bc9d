import fs from 'node:fs';
import path from 'node:path';
import { readTextIfExists, writeFileAtomic } from '../../base/durable-file.js';
import { describeFsError, ErrorCode, OutpostError } from '../../base/errors.js';

/** A program and its arguments, as the entry starts it at login. */
export interface LoginCommand {
  readonly command: string;
  readonly args: readonly string[];
}

/**
 * Start at login, for one scope (this user, or every user when elevated): where the OS keeps the
 * entry, and the entry's text (a file's content, a registry value's data). Each OS renders the
 * command in its own syntax; whether anything changed is decided once, below, for all of them.
 */
export interface AutostartStore {
  /** For messages and `outpost status`: a file's path, or a registry value's. */
  readonly location: string;
  /** The entry's text now, or null when there is none. */
  read(): string | null;
  write(text: string): void;
  remove(): void;
  /** The entry's text for this command: what `read` returns once it is written. */
  render(login: LoginCommand): string;
}

export type AutostartChange = 'created' | 'updated' | 'unchanged' | 'removed' | 'absent';

/** Idempotent: enabling twice writes once. */
export function enableAutostart(store: AutostartStore, login: LoginCommand): AutostartChange {
  const wanted = store.render(login);
  const current = store.read();
  if (current === wanted) return 'unchanged';
  store.write(wanted);
  return current === null ? 'created' : 'updated';
}

/** Idempotent: disabling twice removes once. */
export function disableAutostart(store: AutostartStore): AutostartChange {
  if (store.read() === null) return 'absent';
  store.remove();
  return 'removed';
}

/**
 * An entry that is a file of its own (Linux's XDG autostart, macOS's LaunchAgents): written
 * atomically, readable by all (the session manager or launchd reads it, not us), removed when disabled.
 */
export function fileAutostart(file: string, render: (login: LoginCommand) => string): AutostartStore {
  return {
    location: file,
    read: () => guarded(file, 'read', () => readTextIfExists(file)),
    write: (text) =>
      guarded(file, 'write', () => {
        fs.mkdirSync(path.dirname(file), { recursive: true, mode: 0o755 });
        writeFileAtomic(file, text, 0o644);
      }),
    remove: () => guarded(file, 'remove', () => fs.rmSync(file, { force: true })),
    render,
  };
}

function guarded<T>(file: string, what: string, run: () => T): T {
  try {
    return run();
  } catch (error) {
    throw new OutpostError(ErrorCode.AUTOSTART, `Cannot ${what} the autostart entry ${file}: ${describeFsError(error)}.`, { cause: error, details: { file } });
  }
}

/** Linux: an XDG autostart entry (freedesktop.org Desktop Entry, `Exec` quoted by its rules). */
export function desktopEntry(login: LoginCommand): string {
  const exec = [login.command, ...login.args].map(desktopExecArg).join(' ');
  return ['[Desktop Entry]', 'Type=Application', 'Name=Outpost', 'Comment=The Outpost agent', `Exec=${exec}`, 'Terminal=false', 'NoDisplay=true', 'X-GNOME-Autostart-enabled=true', ''].join('\n');
}

/** Characters that make an Exec argument need quotes (the Desktop Entry spec's reserved list). */
const EXEC_RESERVED = /[\s"'\\><~|&;$*?#()`]/;

/**
 * One Exec argument: quoted when it holds a reserved character, with `"`, `` ` ``, `$` and `\`
 * escaped inside the quotes; `%` doubled (a field code otherwise); then the string escape of every
 * Desktop Entry value, which doubles each backslash once more.
 */
export function desktopExecArg(arg: string): string {
  const percent = arg.replaceAll('%', '%%');
  const quoted = EXEC_RESERVED.test(percent) || percent === '' ? `"${percent.replace(/["`$\\]/g, '\\$&')}"` : percent;
  return quoted.replaceAll('\\', '\\\\');
}

/** macOS: a LaunchAgent that runs the command at login. */
export function launchAgentPlist(label: string, login: LoginCommand): string {
  const args = [login.command, ...login.args].map((arg) => `    <string>${xmlText(arg)}</string>`);
  return [
    '<?xml version="1.0" encoding="UTF-8"?>',
    '<!DOCTYPE plist PUBLIC "-//Apple//DTD PLIST 1.0//EN" "http://www.apple.com/DTDs/PropertyList-1.0.dtd">',
    '<plist version="1.0">',
    '<dict>',
    '  <key>Label</key>',
    `  <string>${xmlText(label)}</string>`,
    '  <key>ProgramArguments</key>',
    '  <array>',
    ...args,
    '  </array>',
    '  <key>RunAtLoad</key>',
    '  <true/>',
    '</dict>',
    '</plist>',
    '',
  ].join('\n');
}

function xmlText(text: string): string {
  return text.replaceAll('&', '&amp;').replaceAll('<', '&lt;').replaceAll('>', '&gt;');
}

/**
 * Windows: the command line a Run value holds, each argument quoted as CommandLineToArgvW reads it
 * back (a path with spaces quoted: unquoted, `C:\Program Files\...` would start `C:\Program.exe`).
 */
export function windowsCommandLine(login: LoginCommand): string {
  return [login.command, ...login.args].map(windowsArg).join(' ');
}

function windowsArg(arg: string): string {
  if (arg !== '' && !/[\s"]/.test(arg)) return arg;
  // Backslashes are literal except before a quote: those before a quote, and before the closing one, are doubled.
  return `"${arg.replace(/(\\*)"/g, '$1$1\\"').replace(/(\\+)$/, '$1$1')}"`;
}
