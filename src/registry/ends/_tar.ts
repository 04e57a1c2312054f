// Writing tar archives as `docker save` does: regular files only, ustar headers (mode 0644,
// owner 0, mtime 0), each file padded to 512 bytes, two empty blocks at the end.

/** A tar block. */
export const BLOCK = 512;

const encoder = new TextEncoder();

/** `value` in `width` bytes of octal and a NUL, or base-256 (GNU) when it does not fit. */
function putNumber(header: Uint8Array, offset: number, width: number, value: number): void {
  if (value < 8 ** (width - 1)) {
    header.set(encoder.encode(value.toString(8).padStart(width - 1, "0")), offset);
    return;
  }
  let rest = value;
  for (let i = offset + width - 1; i > offset; i--) {
    header[i] = rest % 256;
    rest = Math.floor(rest / 256);
  }
  header[offset] = 0x80;
}

/**
 * The ustar header of a regular file.
 *
 * @param name Its path in the archive, at most 100 bytes (`<64 hex>/layer.tar` is 74).
 * @param size Its size in bytes.
 * @returns The 512-byte header.
 */
export function tarHeader(name: string, size: number): Uint8Array {
  const bytes = encoder.encode(name);
  if (bytes.length > 100) throw new Error(`tar entry name "${name}" is longer than 100 bytes`);
  const header = new Uint8Array(BLOCK);
  header.set(bytes, 0);
  putNumber(header, 100, 8, 0o644);
  putNumber(header, 108, 8, 0);
  putNumber(header, 116, 8, 0);
  putNumber(header, 124, 12, size);
  putNumber(header, 136, 12, 0);
  header.fill(0x20, 148, 156); // the checksum counts its own field as spaces
  header[156] = 0x30; // "0": a regular file
  header.set(encoder.encode("ustar\u000000"), 257);
  const sum = header.reduce((total, byte) => total + byte, 0);
  header.set(encoder.encode(sum.toString(8).padStart(6, "0") + "\0 "), 148);
  return header;
}

/**
 * The zeros after a file of `size` bytes, up to the next block.
 *
 * @param size The file's size.
 * @returns 0 to 511 zero bytes.
 */
export function tarPadding(size: number): Uint8Array {
  return new Uint8Array((BLOCK - (size % BLOCK)) % BLOCK);
}

/** The end of an archive: two empty blocks. */
export const TAR_END: Uint8Array = new Uint8Array(2 * BLOCK);
