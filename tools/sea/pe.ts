/**
 * The few Windows PE (portable executable) edits the updater's SEA build needs, on whole-file buffers:
 * - the Authenticode signature of node.exe is removed before injection (postject appends a resource
 *   section where the certificate table was and leaves the data directory pointing into it; a release
 *   signs the injected exe again, as `signtool remove /s` + `signtool sign` would);
 * - the optional-header checksum is recomputed after injection (postject leaves the old one);
 * - the Wine 8 workaround of test/wine/setup.sh (rename the `VirtualAlloc2` lookup string), for the
 *   Wine test copy only: never for an exe that ships.
 */

export class PeFormatError extends Error {
  override name = 'PeFormatError';
}

interface PeLayout {
  /** Offset of the optional header's CheckSum field. */
  checksumOffset: number;
  /** Offset of data directory entry 4 (certificate table: file offset, size). */
  securityDirOffset: number;
}

function layout(buf: Buffer): PeLayout {
  if (buf.length < 0x40 || buf.toString('latin1', 0, 2) !== 'MZ') throw new PeFormatError('not a PE file (no MZ header)');
  const pe = buf.readUInt32LE(0x3c);
  if (pe + 24 > buf.length || buf.toString('latin1', pe, pe + 4) !== 'PE\0\0') throw new PeFormatError('not a PE file (no PE signature)');
  const optional = pe + 24;
  const magic = buf.readUInt16LE(optional);
  if (magic !== 0x20b) throw new PeFormatError(`not a PE32+ (64-bit) image (optional header magic 0x${magic.toString(16)})`);
  const numberOfRvaAndSizes = buf.readUInt32LE(optional + 108);
  if (numberOfRvaAndSizes < 5) throw new PeFormatError('the PE has no certificate table directory entry');
  return { checksumOffset: optional + 64, securityDirOffset: optional + 112 + 4 * 8 };
}

/** The certificate table (Authenticode signature) as the data directory describes it; size 0 when unsigned. */
export function certificateTable(buf: Buffer): { offset: number; size: number } {
  const { securityDirOffset } = layout(buf);
  return { offset: buf.readUInt32LE(securityDirOffset), size: buf.readUInt32LE(securityDirOffset + 4) };
}

/**
 * A copy without the Authenticode signature: the directory entry zeroed and the table (which must be
 * the file's tail, as signing leaves it) cut off. Unsigned input comes back as it is.
 */
export function stripAuthenticode(buf: Buffer): { data: Buffer; removedBytes: number } {
  const { securityDirOffset } = layout(buf);
  const { offset, size } = certificateTable(buf);
  if (size === 0) return { data: buf, removedBytes: 0 };
  // The table is 8-byte aligned and may be followed by padding up to the end of the file.
  if (offset + size > buf.length || buf.length - (offset + size) >= 8) {
    throw new PeFormatError(`the certificate table (offset ${offset}, ${size} bytes) is not at the end of the ${buf.length}-byte file`);
  }
  const data = Buffer.from(buf.subarray(0, offset));
  data.fill(0, securityDirOffset, securityDirOffset + 8);
  return { data, removedBytes: buf.length - offset };
}

/** The PE image checksum (as IMAGEHLP's CheckSumMappedFile computes it), the CheckSum field counted as 0. */
export function computePeChecksum(buf: Buffer): number {
  const { checksumOffset } = layout(buf);
  let sum = 0;
  const even = buf.length & ~1;
  for (let i = 0; i < even; i += 2) {
    if (i === checksumOffset || i === checksumOffset + 2) continue;
    sum += buf.readUInt16LE(i);
    sum = (sum & 0xffff) + (sum >>> 16);
  }
  if (even !== buf.length) {
    sum += buf.readUInt8(even);
    sum = (sum & 0xffff) + (sum >>> 16);
  }
  sum = (sum & 0xffff) + (sum >>> 16);
  return (sum + buf.length) >>> 0;
}

/** Writes the correct checksum in place; returns it. */
export function updatePeChecksum(buf: Buffer): number {
  const checksum = computePeChecksum(buf);
  buf.writeUInt32LE(checksum, layout(buf).checksumOffset);
  return checksum;
}

/** The VS_VERSION_INFO string `key` (e.g. "ProductVersion": "24.21.0"), or null. */
export function peVersionString(buf: Buffer, key: string): string | null {
  const needle = Buffer.from(`${key}\0`, 'utf16le');
  for (let i = buf.indexOf(needle); i >= 0; i = buf.indexOf(needle, i + 1)) {
    if (i % 2 !== 0) continue;
    let j = i + needle.length;
    while (j + 1 < buf.length && buf[j] === 0 && buf[j + 1] === 0) j += 2; // alignment padding
    let end = j;
    while (end + 1 < buf.length && (buf[end] !== 0 || buf[end + 1] !== 0)) end += 2;
    const value = buf.toString('utf16le', j, end);
    if (/^[\x20-\x7e]{1,64}$/.test(value)) return value;
  }
  return null;
}

const VIRTUAL_ALLOC2 = Buffer.from('VirtualAlloc2\0', 'latin1');

/**
 * Wine 8 only (see test/wine/setup.sh, step 2): V8 looks up `VirtualAlloc2` by name and, when found,
 * reserves memory in a way Wine 8 rejects ("Fatal process out of memory: SegmentedTable::
 * InitializeTable"). Renaming the one lookup string makes V8 take its fallback. Patches `buf` in
 * place; throws unless the string occurs exactly once.
 */
export function disableVirtualAlloc2Lookup(buf: Buffer): void {
  const at = buf.indexOf(VIRTUAL_ALLOC2);
  if (at < 0) throw new PeFormatError('no VirtualAlloc2 string in the exe: nothing to patch (already patched?)');
  if (buf.indexOf(VIRTUAL_ALLOC2, at + 1) >= 0) throw new PeFormatError('VirtualAlloc2 occurs more than once in the exe: refusing to patch');
  buf.write('VirtualAllocZ', at, 'latin1');
}
