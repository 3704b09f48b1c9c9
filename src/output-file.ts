// Output files: checked before any work (never an input, no silent overwrite), written beside the target under a
// temp name and renamed into place; the temp file is removed on errors and on SIGINT/SIGTERM/SIGHUP.
import { closeSync, existsSync, fsyncSync, mkdirSync, openSync, readdirSync, realpathSync, renameSync, rmSync, statSync, unlinkSync, writeSync } from "node:fs";
import { basename, dirname, join, resolve } from "node:path";
import { OutputError } from "./errors.js";
import { onInterrupt } from "./interrupt.js";

export interface OutputOptions {
  /** Replace an existing output (default false: an existing output is refused). */
  overwrite?: boolean;
  /** Inputs of the job: an output that is one of them (same resolved path, or same inode) is refused. */
  inputs?: readonly string[];
}

const REASONS: Record<string, string> = {
  ENOENT: "no such directory", EACCES: "permission denied", EPERM: "permission denied", EISDIR: "is a directory",
  ENOTDIR: "a part of the path is not a directory", ENOSPC: "no space left on the device", EDQUOT: "disk quota exceeded",
  EROFS: "read-only file system", ENAMETOOLONG: "name too long", EEXIST: "already exists", EXDEV: "crosses file systems",
};

/** The plain reason of a file-system error, e.g. "permission denied (EACCES)". */
export function ioReason(e: unknown): string {
  const code = (e as NodeJS.ErrnoException)?.code;
  if (code && REASONS[code]) return `${REASONS[code]} (${code})`;
  return code ?? (e instanceof Error ? e.message : String(e));
}

/** True when `a` and `b` name the same file: same path after resolving links, or the same inode. */
export function sameFile(a: string, b: string): boolean {
  const ra = resolve(a);
  const rb = resolve(b);
  if (ra === rb) return true;
  let sa, sb;
  try {
    if (realpathSync(ra) === realpathSync(rb)) return true;
    sa = statSync(ra);
    sb = statSync(rb);
  } catch {
    return false;
  }
  return sa.dev === sb.dev && sa.ino === sb.ino;
}

/**
 * Refuses an output before any work is done: its directory must exist (a missing directory is refused, never
 * created), it must not be an input, and an existing one needs `overwrite`. `kind` "directory" accepts an
 * existing empty directory without `overwrite`.
 */
export function checkOutput(path: string, opts: OutputOptions = {}, kind: "file" | "directory" = "file"): void {
  const parent = dirname(resolve(path));
  let ps;
  try {
    ps = statSync(parent);
  } catch {
    throw new OutputError(path, `the directory ${dirname(path)} does not exist (create it first)`);
  }
  if (!ps.isDirectory()) throw new OutputError(path, `${dirname(path)} is not a directory`);
  for (const input of opts.inputs ?? []) {
    if (sameFile(path, input)) throw new OutputError(path, `it is an input of this job (${input}); choose another output`);
  }
  if (!existsSync(path)) return;
  const st = statSync(path);
  if (kind === "file" && st.isDirectory()) throw new OutputError(path, "it is a directory");
  if (kind === "directory") {
    if (!st.isDirectory()) throw new OutputError(path, "it exists and is not a directory");
    if (readdirSync(path).length === 0) return;
  }
  if (!opts.overwrite) throw new OutputError(path, "it already exists (--force, or force: true, replaces it)");
}

/** Longest prefix of `s` of at most `max` UTF-8 bytes, cut between characters. */
function utf8Prefix(s: string, max: number): string {
  let out = "";
  let bytes = 0;
  for (const ch of s) {
    bytes += Buffer.byteLength(ch);
    if (bytes > max) break;
    out += ch;
  }
  return out;
}

/**
 * A hidden temp name beside `path`. Its name keeps at most 200 bytes of the target's, so a legal
 * 255-byte file name still has a legal temp name.
 */
export function tempPathFor(path: string): string {
  const tag = `${process.pid}.${Date.now().toString(36)}${Math.floor(Math.random() * 36 ** 4).toString(36)}`;
  return join(dirname(path), `.${utf8Prefix(basename(path), 200)}.${tag}.tmp`);
}

/** A file being written under a temp name: `commit` renames it into place, `discard` (or a signal) removes it. */
export class AtomicFile {
  private fd: number | undefined;
  private readonly release: () => void;
  readonly tmp: string;
  bytesWritten = 0;

  constructor(readonly path: string, private readonly opts: OutputOptions = {}) {
    checkOutput(path, opts);
    this.tmp = tempPathFor(path);
    try {
      this.fd = openSync(this.tmp, "wx");
    } catch (e) {
      throw new OutputError(path, ioReason(e), { cause: e });
    }
    const fd = this.fd;
    const tmp = this.tmp;
    this.release = onInterrupt(() => {
      try { closeSync(fd); } catch { /* closed */ }
      try { unlinkSync(tmp); } catch { /* gone */ }
    });
  }

  write(bytes: Uint8Array): void {
    if (this.fd === undefined) throw new OutputError(this.path, "already closed");
    try {
      let done = 0;
      while (done < bytes.byteLength) done += writeSync(this.fd, bytes, done, bytes.byteLength - done);
    } catch (e) {
      this.discard();
      throw new OutputError(this.path, ioReason(e), { cause: e });
    }
    this.bytesWritten += bytes.byteLength;
  }

  /** fsync, then rename over the target (refused if the target appeared meanwhile and overwrite is off). */
  commit(): void {
    if (this.fd === undefined) throw new OutputError(this.path, "already closed");
    try {
      fsyncSync(this.fd);
      closeSync(this.fd);
      this.fd = undefined;
      if (!this.opts.overwrite && existsSync(this.path)) throw new OutputError(this.path, "it appeared while being written; nothing was replaced");
      renameSync(this.tmp, this.path);
    } catch (e) {
      this.discard();
      throw e instanceof OutputError ? e : new OutputError(this.path, ioReason(e), { cause: e });
    }
    this.release();
  }

  /** Closes and removes the temp file; the target is untouched. */
  discard(): void {
    if (this.fd !== undefined) {
      try { closeSync(this.fd); } catch { /* closed */ }
      this.fd = undefined;
    }
    try { unlinkSync(this.tmp); } catch { /* gone */ }
    this.release();
  }
}

/** Writes a whole file atomically. */
export function writeFileAtomic(path: string, data: Uint8Array | string, opts: OutputOptions = {}): void {
  const f = new AtomicFile(path, opts);
  f.write(typeof data === "string" ? Buffer.from(data, "utf8") : data);
  f.commit();
}

/** Writes a text file atomically (UTF-8). */
export const writeText = (path: string, text: string, opts: OutputOptions = {}): void => writeFileAtomic(path, text, opts);

/**
 * A directory built under a temp name beside `path` and moved into place: renamed when `path` does not exist,
 * else (an empty directory, or `overwrite`) its files are renamed into `path` one by one, replacing files of the
 * same names and leaving other files alone. Removed on errors and on signals.
 */
export class AtomicDir {
  private readonly release: () => void;
  readonly tmp: string;
  private done = false;

  constructor(readonly path: string, private readonly opts: OutputOptions = {}) {
    checkOutput(path, opts, "directory");
    this.tmp = tempPathFor(path);
    try {
      mkdirSync(this.tmp);
    } catch (e) {
      throw new OutputError(path, ioReason(e), { cause: e });
    }
    const tmp = this.tmp;
    this.release = onInterrupt(() => rmSync(tmp, { recursive: true, force: true }));
  }

  /** Where a file of the directory is written while it is built. */
  file(name: string): string {
    return join(this.tmp, name);
  }

  commit(): void {
    try {
      if (!existsSync(this.path)) renameSync(this.tmp, this.path);
      else {
        checkOutput(this.path, this.opts, "directory");
        for (const name of readdirSync(this.tmp)) renameSync(join(this.tmp, name), join(this.path, name));
        rmSync(this.tmp, { recursive: true, force: true });
      }
    } catch (e) {
      this.discard();
      throw e instanceof OutputError ? e : new OutputError(this.path, ioReason(e), { cause: e });
    }
    this.done = true;
    this.release();
  }

  discard(): void {
    if (!this.done) rmSync(this.tmp, { recursive: true, force: true });
    this.release();
  }
}
