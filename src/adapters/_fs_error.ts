// Errors shaped like Node's (the code in front of the message and as a property), for the
// failures an adapter detects itself rather than receives from a syscall.

/** An error with `code`, `syscall` and `path`, e.g. `ENOENT: no such file or directory, open '/x'`. */
export function fsError(code: string, what: string, syscall: string, path: string): Error {
  return Object.assign(new Error(`${code}: ${what}, ${syscall} '${path}'`), {
    code,
    syscall,
    path,
  });
}

/** `EFBIG` for a file of `size` bytes read with a `maxBytes` limit. */
export function tooBig(path: string, size: number, maxBytes: number): Error {
  return fsError("EFBIG", `file is ${size} bytes, over the limit of ${maxBytes}`, "read", path);
}
