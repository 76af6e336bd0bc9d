/**
 * Direct Win32 calls through ffi-rs, for the questions that have no faithful answer from a command
 * line tool: "is this process elevated?" and "when was process N created?" (to tell a live lock holder
 * from a new process that reused its pid); win32-restart-manager.ts asks "who holds this file?"
 * through the same loader (`callWin32`).
 *
 * ffi-rs is loaded lazily (createRequire on first call), never by a top-level import: its index.js
 * picks the native binding for the running OS at load time and throws when it is missing, and on
 * Linux/macOS only the local platform's binary is installed. A static import would make this module,
 * and everything that imports it (win32.ts, the platform index, the tests), fail to load anywhere but
 * on Windows. Lazy loading keeps importing side-effect free, so Linux tests can check the constants
 * and call specifications below, and the Windows addon is only loaded when a Windows code path runs.
 *
 * Pointers: out-parameters are Node Buffers passed as DataType.U8Array (ffi-rs hands the C function a
 * pointer to the Buffer's own memory, which the function fills in place); NULL pointers and NULL
 * handles are passed as DataType.I64 0, which on the Windows x64 ABI (every integer or pointer
 * argument is a 64-bit slot in RCX/RDX/R8/R9 or on the stack) is exactly a NULL pointer. The process
 * handle is an opaque DataType.External. GetLastError is read by ffi-rs right after the call
 * (`errno: true`, Rust's io::Error::last_os_error(), i.e. GetLastError on Windows).
 */
import { createRequire } from 'node:module';
import type * as FfiRs from 'ffi-rs';
import { ErrorCode, OutpostError } from '../../base/errors.js';

/** WELL_KNOWN_SID_TYPE WinBuiltinAdministratorsSid: S-1-5-32-544, BUILTIN\Administrators. */
export const WIN_BUILTIN_ADMINISTRATORS_SID = 26;
/** SECURITY_MAX_SID_SIZE: a buffer this large holds any SID. */
export const SECURITY_MAX_SID_SIZE = 68;
/** OpenProcess access right that is granted for almost every process, protected ones included. */
export const PROCESS_QUERY_LIMITED_INFORMATION = 0x1000;
/** OpenProcess bInheritHandle. */
export const FALSE = 0;
/** GetExitCodeProcess's value for a process that has not exited. */
export const STILL_ACTIVE = 259;
export const ERROR_ACCESS_DENIED = 5;
export const ERROR_INVALID_PARAMETER = 87;
/** 100 ns intervals between 1601-01-01T00:00Z (FILETIME's epoch) and 1970-01-01T00:00Z. */
export const FILETIME_UNIX_EPOCH = 116_444_736_000_000_000n;

type ParamTypeName = 'I32' | 'U32' | 'I64' | 'U8Array' | 'External';

export interface Win32CallSpec {
  readonly dll: string;
  readonly ret: ParamTypeName;
  /** One entry per C parameter, in order; the comment in each spec names them. */
  readonly params: readonly ParamTypeName[];
}

/** The exact signatures used for each call (a Linux test can assert them). */
export const WIN32_CALLS = {
  // BOOL CreateWellKnownSid(WELL_KNOWN_SID_TYPE WellKnownSidType, PSID DomainSid /* NULL */, PSID pSid, DWORD *cbSid)
  CreateWellKnownSid: { dll: 'advapi32.dll', ret: 'I32', params: ['I32', 'I64', 'U8Array', 'U8Array'] },
  // BOOL CheckTokenMembership(HANDLE TokenHandle /* NULL: the calling thread's token */, PSID SidToCheck, PBOOL IsMember)
  CheckTokenMembership: { dll: 'advapi32.dll', ret: 'I32', params: ['I64', 'U8Array', 'U8Array'] },
  // HANDLE OpenProcess(DWORD dwDesiredAccess, BOOL bInheritHandle, DWORD dwProcessId)
  OpenProcess: { dll: 'kernel32.dll', ret: 'External', params: ['U32', 'I32', 'U32'] },
  // BOOL GetProcessTimes(HANDLE hProcess, LPFILETIME lpCreationTime, LPFILETIME lpExitTime, LPFILETIME lpKernelTime, LPFILETIME lpUserTime)
  GetProcessTimes: { dll: 'kernel32.dll', ret: 'I32', params: ['External', 'U8Array', 'U8Array', 'U8Array', 'U8Array'] },
  // BOOL GetExitCodeProcess(HANDLE hProcess, LPDWORD lpExitCode)
  GetExitCodeProcess: { dll: 'kernel32.dll', ret: 'I32', params: ['External', 'U8Array'] },
  // BOOL CloseHandle(HANDLE hObject)
  CloseHandle: { dll: 'kernel32.dll', ret: 'I32', params: ['External'] },
  // UINT GetSystemDirectoryW(LPWSTR lpBuffer, UINT uSize /* in WCHARs */)
  GetSystemDirectoryW: { dll: 'kernel32.dll', ret: 'U32', params: ['U8Array', 'U32'] },
} as const satisfies Record<string, Win32CallSpec>;

export type Win32Function = keyof typeof WIN32_CALLS;

/** The argument lists built for each call, exported for tests (buffers are freshly allocated). */
export function createWellKnownSidArgs(): [number, number, Buffer, Buffer] {
  const size = Buffer.alloc(4);
  size.writeUInt32LE(SECURITY_MAX_SID_SIZE);
  return [WIN_BUILTIN_ADMINISTRATORS_SID, 0, Buffer.alloc(SECURITY_MAX_SID_SIZE), size];
}

export function openProcessArgs(pid: number): [number, number, number] {
  return [PROCESS_QUERY_LIMITED_INFORMATION, FALSE, pid];
}

/**
 * FILETIME (100 ns ticks since 1601-01-01 UTC) as ISO 8601 UTC with seven fractional digits, e.g.
 * `2026-11-25T10:55:42.1234567Z`: the full FILETIME precision, so equal strings mean equal
 * FILETIMEs; `Date.parse` reads it (to the millisecond).
 */
export function filetimeToIso(filetime: bigint): string {
  if (filetime < 0n) throw new RangeError(`FILETIME must not be negative, got ${filetime}`);
  const sinceUnix = filetime - FILETIME_UNIX_EPOCH;
  let seconds = sinceUnix / 10_000_000n;
  let ticks = sinceUnix % 10_000_000n;
  if (ticks < 0n) {
    ticks += 10_000_000n;
    seconds -= 1n;
  }
  const whole = new Date(Number(seconds) * 1000).toISOString(); // 2026-11-25T10:55:42.000Z
  return `${whole.slice(0, 19)}.${ticks.toString().padStart(7, '0')}Z`;
}

/** Inverse of filetimeToIso (for tests and for comparing recorded times). */
export function isoToFiletime(iso: string): bigint {
  const match = /^(\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2})\.(\d{7})Z$/.exec(iso);
  if (!match?.[1] || !match[2]) throw new RangeError(`not a creation time from filetimeToIso: ${iso}`);
  const ms = Date.parse(`${match[1]}Z`);
  if (Number.isNaN(ms)) throw new RangeError(`not a valid date: ${iso}`);
  return BigInt(ms / 1000) * 10_000_000n + BigInt(match[2]) + FILETIME_UNIX_EPOCH;
}

export function platformError(message: string, syscall: string, win32Error?: number, cause?: unknown): OutpostError {
  const details: Record<string, unknown> = { syscall };
  if (win32Error !== undefined) details.win32Error = win32Error;
  return new OutpostError(ErrorCode.PLATFORM_CALL, message, cause === undefined ? { details } : { details, cause });
}

type Ffi = typeof FfiRs;
type Called<T> = { value: T; errnoCode: number; errnoMessage: string };

let loaded: Ffi | undefined;
const opened = new Set<string>();

/** The ffi-rs module, loaded on first use (see above). */
export function ffi(): Ffi {
  if (loaded) return loaded;
  if (process.platform !== 'win32') {
    throw platformError(`Win32 calls are only available on Windows (this is ${process.platform}).`, 'load');
  }
  try {
    loaded = createRequire(import.meta.url)('ffi-rs') as Ffi;
  } catch (error) {
    throw platformError(`Cannot load ffi-rs to call Windows APIs: ${error instanceof Error ? error.message : String(error)}.`, 'load', undefined, error);
  }
  return loaded;
}

/**
 * Calls `funcName` of `library` (a DLL name, or a full path) with `spec`'s signature; returns its value
 * and the thread's GetLastError after it. Each library is opened at its first call, so a DLL that only
 * one rare path needs (rstrtmgr.dll) is never loaded into an agent that does not take that path.
 */
export function callWin32<T>(library: string, funcName: string, spec: Win32CallSpec, paramsValue: unknown[]): Called<T> {
  const lib = ffi();
  const key = `outpost:${library}`;
  if (!opened.has(key)) {
    try {
      lib.open({ library: key, path: library });
    } catch (error) {
      throw platformError(`Cannot load ${library}: ${error instanceof Error ? error.message : String(error)}.`, 'load', undefined, error);
    }
    opened.add(key);
  }
  return lib.load({
    library: key,
    funcName,
    retType: lib.DataType[spec.ret],
    paramsType: spec.params.map((type) => lib.DataType[type]),
    paramsValue,
    errno: true,
  }) as unknown as Called<T>;
}

function call<T>(name: Win32Function, paramsValue: unknown[]): Called<T> {
  const spec: Win32CallSpec = WIN32_CALLS[name];
  return callWin32<T>(spec.dll, name, spec, paramsValue);
}

function failed(name: Win32Function, what: string, result: Called<unknown>): OutpostError {
  return platformError(
    `${what}: ${name} failed with Windows error ${result.errnoCode} (${result.errnoMessage.trim()}).`,
    name,
    result.errnoCode,
  );
}

/**
 * True when the current process token is a member of BUILTIN\Administrators with the group enabled:
 * an elevated process, or one run by an admin with UAC off. Under UAC a non-elevated admin has a
 * filtered token in which the group is deny-only, and gets false. Throws an OutpostError with code
 * ERR_PLATFORM_CALL if a call fails (never guesses false).
 */
export function isUserAdmin(): boolean {
  const [type, domain, sid, size] = createWellKnownSidArgs();
  const created = call<number>('CreateWellKnownSid', [type, domain, sid, size]);
  if (created.value === 0) throw failed('CreateWellKnownSid', 'Cannot build the BUILTIN\\Administrators SID', created);
  const isMember = Buffer.alloc(4);
  const checked = call<number>('CheckTokenMembership', [0, sid, isMember]);
  if (checked.value === 0) throw failed('CheckTokenMembership', 'Cannot check membership in BUILTIN\\Administrators', checked);
  return isMember.readInt32LE(0) !== 0;
}

/**
 * The creation time of process `pid` in the format of filetimeToIso (ISO 8601 UTC, seven fractional
 * digits = the full 100 ns FILETIME), or null when no such process is running: OpenProcess fails with
 * ERROR_INVALID_PARAMETER (no process has this pid), or the process has exited but its process object
 * is still kept by an open handle somewhere (GetExitCodeProcess is not STILL_ACTIVE; a process that
 * itself exited with code 259 is taken as running, Windows offers no cheaper exact test with this
 * access right).
 *
 * Access denied (ERROR_ACCESS_DENIED, e.g. a process of another user or a system process whose DACL
 * refuses even PROCESS_QUERY_LIMITED_INFORMATION) throws an OutpostError ERR_PLATFORM_CALL with
 * details.win32Error === 5 rather than returning something: the process exists, so null ("gone")
 * would let a caller steal a lock from a live process, and any made-up time would read as "pid
 * reused". The caller decides what an unknowable identity means. Other failures throw as well.
 */
export function processCreationTime(pid: number): string | null {
  if (!Number.isInteger(pid) || pid < 0 || pid > 0xffff_ffff) {
    throw new RangeError(`pid must be an integer from 0 to 4294967295, got ${pid}`);
  }
  const lib = ffi();
  const opened = call<FfiRs.JsExternal>('OpenProcess', openProcessArgs(pid));
  if (lib.isNullPointer(opened.value)) {
    if (opened.errnoCode === ERROR_INVALID_PARAMETER) return null;
    throw failed('OpenProcess', `Cannot open process ${pid} to read its creation time`, opened);
  }
  const handle = opened.value;
  try {
    const creation = Buffer.alloc(8);
    const times = call<number>('GetProcessTimes', [handle, creation, Buffer.alloc(8), Buffer.alloc(8), Buffer.alloc(8)]);
    if (times.value === 0) throw failed('GetProcessTimes', `Cannot read the creation time of process ${pid}`, times);
    const exitCode = Buffer.alloc(4);
    const exit = call<number>('GetExitCodeProcess', [handle, exitCode]);
    if (exit.value === 0) throw failed('GetExitCodeProcess', `Cannot tell whether process ${pid} is running`, exit);
    if (exitCode.readUInt32LE(0) !== STILL_ACTIVE) return null;
    return filetimeToIso(creation.readBigUInt64LE(0));
  } finally {
    call<number>('CloseHandle', [handle]);
  }
}

/** MAX_PATH, in WCHARs: enough for the system folder on every Windows installation. */
const MAX_PATH = 260;

/**
 * The system folder (C:\Windows\System32), from GetSystemDirectoryW rather than %SystemRoot%, which
 * whoever starts the process controls. DLLs that are not KnownDLLs (rstrtmgr.dll) are loaded from here
 * by full path: by bare name, Windows would look in the executable's folder first, where a planted
 * copy would run inside this process.
 */
export function systemDirectory(): string {
  const buffer = Buffer.alloc(MAX_PATH * 2);
  const result = call<number>('GetSystemDirectoryW', [buffer, MAX_PATH]);
  if (result.value === 0) throw failed('GetSystemDirectoryW', 'Cannot find the Windows system folder', result);
  // A value this large is the buffer size it would need, not a length.
  if (result.value >= MAX_PATH) throw platformError(`The Windows system folder's path is longer than ${MAX_PATH - 1} characters.`, 'GetSystemDirectoryW');
  return buffer.toString('utf16le', 0, result.value * 2);
}
