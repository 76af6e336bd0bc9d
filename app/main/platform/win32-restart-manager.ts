/**
 * Who holds a file, from Windows' Restart Manager (rstrtmgr.dll): the API installers use to name the
 * applications that keep files in use. It sees open handles and the images of running executables and
 * loaded DLLs, and names their processes (services by their short name).
 *
 * A session answers for all of its registered files together: RmGetList lists the processes that use
 * any of them, never which file each one uses. Registering is a registry write (Microsoft advises one
 * RmRegisterResources call per group of files, not one per file), so the files go in one call.
 *
 * Wine 8's rstrtmgr.dll is a stub: every function returns ERROR_SUCCESS, RmStartSession hands out the
 * session 0xdeadbeef and RmGetList reports no process, whatever is registered (WINEDEBUG=fixme+all
 * prints "fixme:rstrtmgr:RmGetList ... stub!"). test/wine/held-files.test.ts checks the calls against
 * a stand-in DLL that answers.
 *
 * Marshalling, on top of win32-native.ts's conventions: the LPCWSTR array is a Buffer of 64-bit
 * addresses of NUL-terminated UTF-16 strings that ffi-rs allocates (createPointer of DataType.WString
 * gives a pointer to a slot that holds the string's address; restorePointer as DataType.BigInt reads
 * that address), freed once RmRegisterResources has returned (the session keeps its own copy).
 */
import path from 'node:path';
import type { FileHolder } from './platform.js';
import { callWin32, ffi, platformError, systemDirectory, type Win32CallSpec } from './win32-native.js';

export const RSTRTMGR_DLL = 'rstrtmgr.dll';
/** A session key is a GUID as 32 hex digits; its buffer holds one more WCHAR for the NUL. */
export const CCH_RM_SESSION_KEY = 32;
export const CCH_RM_MAX_APP_NAME = 255;
export const CCH_RM_MAX_SVC_NAME = 63;
export const ERROR_SUCCESS = 0;
export const ERROR_MORE_DATA = 234;

/**
 * RM_PROCESS_INFO: every member is 4-byte aligned, so there is no padding (checked with offsetof
 * against mingw-w64's restartmanager.h):
 *     0  RM_UNIQUE_PROCESS Process { DWORD dwProcessId; FILETIME ProcessStartTime (at 4) }
 *    12  WCHAR strAppName[CCH_RM_MAX_APP_NAME + 1]
 *   524  WCHAR strServiceShortName[CCH_RM_MAX_SVC_NAME + 1]
 *   652  RM_APP_TYPE ApplicationType, 656 ULONG AppStatus, 660 DWORD TSSessionId, 664 BOOL bRestartable
 *   668  (size)
 */
export const RM_PROCESS_INFO = { size: 668, processId: 0, appName: 12, serviceShortName: 524 } as const;

/** The exact signatures used for each call (a Linux test can assert them). */
export const RESTART_MANAGER_CALLS = {
  // DWORD RmStartSession(DWORD *pSessionHandle, DWORD dwSessionFlags /* reserved, 0 */, WCHAR strSessionKey[CCH_RM_SESSION_KEY + 1])
  RmStartSession: { dll: RSTRTMGR_DLL, ret: 'U32', params: ['U8Array', 'U32', 'U8Array'] },
  // DWORD RmRegisterResources(DWORD dwSessionHandle, UINT nFiles, LPCWSTR rgsFileNames[], UINT nApplications,
  //   RM_UNIQUE_PROCESS rgApplications[] /* NULL */, UINT nServices, LPCWSTR rgsServiceNames[] /* NULL */)
  RmRegisterResources: { dll: RSTRTMGR_DLL, ret: 'U32', params: ['U32', 'U32', 'U8Array', 'U32', 'I64', 'U32', 'I64'] },
  // DWORD RmGetList(DWORD dwSessionHandle, UINT *pnProcInfoNeeded, UINT *pnProcInfo, RM_PROCESS_INFO rgAffectedApps[], LPDWORD lpdwRebootReasons)
  RmGetList: { dll: RSTRTMGR_DLL, ret: 'U32', params: ['U32', 'U8Array', 'U8Array', 'U8Array', 'U8Array'] },
  // DWORD RmEndSession(DWORD dwSessionHandle)
  RmEndSession: { dll: RSTRTMGR_DLL, ret: 'U32', params: ['U32'] },
} as const satisfies Record<string, Win32CallSpec>;

type RmFunction = keyof typeof RESTART_MANAGER_CALLS;

/** RmStartSession's arguments: the handle's out-buffer, no flags, the session key's out-buffer. */
export function startSessionArgs(): [Buffer, number, Buffer] {
  return [Buffer.alloc(4), 0, Buffer.alloc((CCH_RM_SESSION_KEY + 1) * 2)];
}

/** RmRegisterResources's arguments for `count` files whose LPCWSTR array is `names`; no processes, no services. */
export function registerFilesArgs(session: number, count: number, names: Buffer): [number, number, Buffer, number, number, number, number] {
  return [session, count, names, 0, 0, 0, 0];
}

/** An array of 64-bit pointers (the Windows x64 LPCWSTR[] layout). */
export function pointerTable(addresses: readonly bigint[]): Buffer {
  const table = Buffer.alloc(8 * addresses.length);
  for (const [i, address] of addresses.entries()) table.writeBigUInt64LE(address, 8 * i);
  return table;
}

/** The holders in the first `count` RM_PROCESS_INFO entries of `buffer`: the service name if set, else the application's. */
export function decodeProcessInfo(buffer: Buffer, count: number): FileHolder[] {
  if (buffer.length < count * RM_PROCESS_INFO.size) {
    throw new RangeError(`${count} RM_PROCESS_INFO entries need ${count * RM_PROCESS_INFO.size} bytes, the buffer has ${buffer.length}`);
  }
  const holders: FileHolder[] = [];
  for (let i = 0; i < count; i++) {
    const entry = buffer.subarray(i * RM_PROCESS_INFO.size, (i + 1) * RM_PROCESS_INFO.size);
    const service = wideString(entry, RM_PROCESS_INFO.serviceShortName, CCH_RM_MAX_SVC_NAME + 1);
    const name = service || wideString(entry, RM_PROCESS_INFO.appName, CCH_RM_MAX_APP_NAME + 1);
    holders.push({ pid: entry.readUInt32LE(RM_PROCESS_INFO.processId), name });
  }
  return holders;
}

/** A WCHAR[chars] field: up to its first NUL, or all of it. */
function wideString(buffer: Buffer, offset: number, chars: number): string {
  let end = offset;
  while (end < offset + chars * 2 && buffer.readUInt16LE(end) !== 0) end += 2;
  return buffer.toString('utf16le', offset, end);
}

/** RmGetList is asked again when processes start between two calls; this many times at most. */
const MAX_LIST_ATTEMPTS = 3;

/**
 * The processes that hold any of `files` (full paths), from one Restart Manager session, ended before
 * returning. Throws an OutpostError ERR_PLATFORM_CALL (details.win32Error: the Restart Manager's error
 * code) when the Restart Manager cannot answer. `library` is the DLL to ask: the system's, by full path
 * (it is not a KnownDLL, see systemDirectory); tests pass a stand-in, since Wine's answers nothing.
 */
export function processesHolding(files: readonly string[], library: string = path.win32.join(systemDirectory(), RSTRTMGR_DLL)): FileHolder[] {
  if (files.length === 0) return [];
  const what = files.length === 1 ? files[0] : `${files.length} files`;
  const rm = (name: RmFunction, args: unknown[]): number => callWin32<number>(library, name, RESTART_MANAGER_CALLS[name], args).value;
  const check = (name: RmFunction, error: number): void => {
    if (error !== ERROR_SUCCESS) throw platformError(`The Restart Manager cannot tell who holds ${what}: ${name} failed with Windows error ${error}.`, name, error);
  };
  const [handle, flags, key] = startSessionArgs();
  check('RmStartSession', rm('RmStartSession', [handle, flags, key]));
  const session = handle.readUInt32LE(0);
  try {
    const names = wideStrings(files);
    try {
      check('RmRegisterResources', rm('RmRegisterResources', registerFilesArgs(session, files.length, names.table)));
    } finally {
      names.free();
    }
    let capacity = 0; // the first call only asks how many there are
    for (let attempt = 0; attempt < MAX_LIST_ATTEMPTS; attempt++) {
      const needed = Buffer.alloc(4);
      const count = Buffer.alloc(4);
      count.writeUInt32LE(capacity);
      // Room for one entry even when the count is 0: RmGetList then writes nothing, but gets a valid pointer.
      const info = Buffer.alloc(Math.max(capacity, 1) * RM_PROCESS_INFO.size);
      const error = rm('RmGetList', [session, needed, count, info, Buffer.alloc(4)]);
      if (error === ERROR_SUCCESS) return decodeProcessInfo(info, Math.min(count.readUInt32LE(0), capacity));
      if (error !== ERROR_MORE_DATA) check('RmGetList', error);
      capacity = needed.readUInt32LE(0);
    }
    throw platformError(`The Restart Manager cannot tell who holds ${what}: the list kept growing over ${MAX_LIST_ATTEMPTS} calls.`, 'RmGetList', ERROR_MORE_DATA);
  } finally {
    rm('RmEndSession', [session]); // its own failure changes nothing in the answer
  }
}

/** `strings` as an LPCWSTR[] in memory that ffi-rs owns; free() after the call that reads it. */
function wideStrings(strings: readonly string[]): { table: Buffer; free(): void } {
  const lib = ffi();
  const types = strings.map(() => lib.DataType.WString);
  const slots = lib.createPointer({ paramsType: types, paramsValue: [...strings] });
  const free = () => lib.freePointer({ paramsType: types, paramsValue: slots, pointerType: lib.PointerType.RsPointer });
  try {
    const addresses = lib.restorePointer({ retType: strings.map(() => lib.DataType.BigInt), paramsValue: slots }) as unknown as bigint[];
    return { table: pointerTable(addresses.map((address) => BigInt(address))), free };
  } catch (error) {
    free();
    throw error;
  }
}
