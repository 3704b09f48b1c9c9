// Arena over one wasm memory: first-fit allocation with coalescing, temporary marks, growth, fresh typed views.
import { LoraEdgeError } from "../errors.js";
import type { WasmMemory } from "./wasm-api.js";

const PAGE = 65536;
/** 4 GiB: the most one wasm32 memory can hold. */
export const MAX_WASM_BYTES = 65536 * PAGE;

export class ArenaError extends LoraEdgeError {
  constructor(message: string) {
    super("ARENA", message);
  }
}

interface Block {
  ptr: number;
  size: number;
}

/**
 * Owns the heap part of a wasm memory (from `base` on). Pointers are unsigned byte offsets (`>>> 0`).
 * Views are created on demand from the current buffer, so they are never stale after a grow; callers
 * must not keep a view across any call that may allocate.
 */
export class Arena {
  private top: number;
  private free: Block[] = [];
  private sizes = new Map<number, number>();
  private readonly maxBytes: number;

  constructor(readonly memory: WasmMemory, readonly base: number, maxBytes = MAX_WASM_BYTES) {
    this.top = align(base >>> 0, 64);
    this.maxBytes = Math.min(maxBytes, MAX_WASM_BYTES);
  }

  /** Bytes currently in use (top of the bump region, less nothing: a rough figure for reports). */
  get used(): number {
    return this.top;
  }

  /** Allocates `bytes` (64-byte aligned); grows the memory when needed. */
  alloc(bytes: number): number {
    const size = align(Math.max(1, bytes), 64);
    for (let i = 0; i < this.free.length; i++) {
      const b = this.free[i];
      if (b.size >= size) {
        const ptr = b.ptr;
        if (b.size === size) this.free.splice(i, 1);
        else {
          b.ptr += size;
          b.size -= size;
        }
        this.sizes.set(ptr, size);
        return ptr >>> 0;
      }
    }
    const ptr = this.top;
    const end = ptr + size;
    if (end > this.maxBytes) {
      throw new ArenaError(`wasm memory exhausted: ${end} bytes needed, at most ${this.maxBytes} in one memory`);
    }
    const have = this.memory.buffer.byteLength;
    if (end > have) {
      const pages = Math.ceil((end - have) / PAGE);
      try {
        this.memory.grow(pages);
      } catch (e) {
        throw new ArenaError(`wasm memory could not grow to ${end} bytes: ${(e as Error).message}`);
      }
    }
    this.top = end;
    this.sizes.set(ptr, size);
    return ptr >>> 0;
  }

  /** Returns a block to the arena; adjacent free blocks merge, the top block shrinks the bump pointer. */
  release(ptr: number): void {
    ptr >>>= 0;
    const size = this.sizes.get(ptr);
    if (size === undefined) throw new ArenaError(`release of unknown pointer ${ptr}`);
    this.sizes.delete(ptr);
    let i = 0;
    while (i < this.free.length && this.free[i].ptr < ptr) i++;
    this.free.splice(i, 0, { ptr, size });
    // coalesce with neighbours
    if (i + 1 < this.free.length && ptr + size === this.free[i + 1].ptr) {
      this.free[i].size += this.free[i + 1].size;
      this.free.splice(i + 1, 1);
    }
    if (i > 0 && this.free[i - 1].ptr + this.free[i - 1].size === ptr) {
      this.free[i - 1].size += this.free[i].size;
      this.free.splice(i, 1);
      i--;
    }
    const last = this.free[this.free.length - 1];
    if (last && last.ptr + last.size === this.top) {
      this.top = last.ptr;
      this.free.pop();
    }
  }

  /** Runs `fn` with a scope whose allocations are all released afterwards. */
  scoped<T>(fn: (s: Scope) => T): T {
    const s = new Scope(this);
    try {
      return fn(s);
    } finally {
      s.dispose();
    }
  }

  u8(ptr: number, n: number): Uint8Array {
    return new Uint8Array(this.memory.buffer, ptr >>> 0, n);
  }
  f32(ptr: number, n: number): Float32Array {
    return new Float32Array(this.memory.buffer, ptr >>> 0, n);
  }

  /** Copies bytes into fresh arena memory. */
  put(bytes: ArrayBufferView): number {
    const ptr = this.alloc(bytes.byteLength);
    this.u8(ptr, bytes.byteLength).set(new Uint8Array(bytes.buffer, bytes.byteOffset, bytes.byteLength));
    return ptr;
  }
}

/** Temporary allocations released together. */
export class Scope {
  private ptrs: number[] = [];
  constructor(readonly arena: Arena) {}
  alloc(bytes: number): number {
    const p = this.arena.alloc(bytes);
    this.ptrs.push(p);
    return p;
  }
  put(bytes: ArrayBufferView): number {
    const p = this.arena.put(bytes);
    this.ptrs.push(p);
    return p;
  }
  dispose(): void {
    for (let i = this.ptrs.length - 1; i >= 0; i--) this.arena.release(this.ptrs[i]);
    this.ptrs = [];
  }
}

function align(n: number, a: number): number {
  return Math.ceil(n / a) * a;
}
