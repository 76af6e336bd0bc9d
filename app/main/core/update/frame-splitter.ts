/**
 * Cuts a stream of bytes (a ranged answer) into frames of known lengths without copying a frame
 * that lies within one received buffer, and without holding more than what has come and not yet been
 * taken: at most a frame and the network's last read.
 */
export class FrameSplitter {
  readonly #pending: Buffer[] = [];
  #bytes = 0;
  #skip: number;

  /** `skip`: bytes to drop first (a host that ignored the range sent the object from its start). */
  constructor(skip = 0) {
    this.#skip = skip;
  }

  push(data: Buffer): void {
    const dropped = Math.min(this.#skip, data.length);
    this.#skip -= dropped;
    if (dropped === data.length) return;
    this.#pending.push(dropped === 0 ? data : data.subarray(dropped));
    this.#bytes += data.length - dropped;
  }

  /** The next `length` bytes, or undefined until they have all come. */
  take(length: number): Buffer | undefined {
    if (length === 0 || this.#bytes < length) return undefined;
    this.#bytes -= length;
    const head = this.#pending[0] as Buffer;
    if (head.length >= length) {
      if (head.length === length) this.#pending.shift();
      else this.#pending[0] = head.subarray(length);
      return head.subarray(0, length);
    }
    const out = Buffer.allocUnsafe(length);
    for (let filled = 0; filled < length; ) {
      const next = this.#pending[0] as Buffer;
      const n = Math.min(next.length, length - filled);
      next.copy(out, filled, 0, n);
      filled += n;
      if (n === next.length) this.#pending.shift();
      else this.#pending[0] = next.subarray(n);
    }
    return out;
  }

  /** Everything received and not taken. */
  rest(): Buffer {
    const all = Buffer.concat(this.#pending, this.#bytes);
    this.#pending.length = 0;
    this.#bytes = 0;
    return all;
  }
}
