/**
 * Windows' shutdown block reason: the sentence Windows shows beside an app that holds the end of the
 * session back ("Outpost is handing an update over..."), instead of "This app is preventing you
 * from shutting down". It is set on the hidden session window's native handle while the agent
 * delays (session-end.ts) and removed when it stops delaying.
 *
 * A shell concern, not a Platform method: it needs a window handle, which only Electron has, and
 * the core never asks for it. The calls go through the platform's Win32 loader (win32-native.ts,
 * ffi-rs loaded on first use), with its conventions: the HWND travels as an I64 (a pointer-sized
 * slot on x64), the LPCWSTR as a NUL-terminated UTF-16LE Buffer (U8Array: a pointer to its bytes).
 * Windows takes these calls only from the thread that made the window: Electron's main process runs
 * its JavaScript on that (UI) thread.
 */
import type { Logger } from '../../base/logger.js';
import { callWin32, type Win32CallSpec } from '../platform/win32-native.js';

/** The exact signatures (a Linux test can assert them). user32.dll is a KnownDLL: loaded by name from System32. */
export const SHUTDOWN_BLOCK_CALLS = {
  // BOOL ShutdownBlockReasonCreate(HWND hWnd, LPCWSTR pwszReason)
  ShutdownBlockReasonCreate: { dll: 'user32.dll', ret: 'I32', params: ['I64', 'U8Array'] },
  // BOOL ShutdownBlockReasonDestroy(HWND hWnd)
  ShutdownBlockReasonDestroy: { dll: 'user32.dll', ret: 'I32', params: ['I64'] },
} as const satisfies Record<string, Win32CallSpec>;

/** Holds the end of the session back with a reason, and lets it go. */
export interface ShutdownBlocker {
  block(reason: string): void;
  release(): void;
}

/**
 * The HWND in the Buffer that Electron's getNativeWindowHandle() returns (pointer-sized, little
 * endian), as the number ffi-rs passes in an I64 slot. Window handles are 32-bit values even on
 * 64-bit Windows (they are shared with 32-bit processes), so the number is exact.
 */
export function hwndOf(handle: Buffer): number {
  const value = handle.length >= 8 ? handle.readBigUInt64LE(0) : BigInt(handle.readUInt32LE(0));
  if (value === 0n || value > BigInt(Number.MAX_SAFE_INTEGER)) throw new RangeError(`not a window handle: 0x${value.toString(16)}`);
  return Number(value);
}

/** A C wide string: UTF-16LE with its NUL terminator. */
export function wideString(text: string): Buffer {
  return Buffer.from(`${text}\0`, 'utf16le');
}

/** The Windows blocker for one window; every failure is logged, never thrown (preventDefault still delays). */
export function win32ShutdownBlocker(nativeHandle: Buffer, log: Logger): ShutdownBlocker {
  const hwnd = hwndOf(nativeHandle);
  const call = (name: keyof typeof SHUTDOWN_BLOCK_CALLS, args: unknown[]) => {
    const spec: Win32CallSpec = SHUTDOWN_BLOCK_CALLS[name];
    try {
      const result = callWin32<number>(spec.dll, name, spec, args);
      if (result.value === 0) log.warn(`${name} failed with Windows error ${result.errnoCode} (${result.errnoMessage.trim()})`);
    } catch (error) {
      log.warn(`${name} could not be called: ${error instanceof Error ? error.message : String(error)}`);
    }
  };
  return {
    block: (reason) => call('ShutdownBlockReasonCreate', [hwnd, wideString(reason)]),
    release: () => call('ShutdownBlockReasonDestroy', [hwnd]),
  };
}
