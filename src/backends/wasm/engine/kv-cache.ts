// Per-context key/value cache of the engine: f16 rows, position-major, one K and one V block per layer in core memory.
import type { Core } from "../../../core/core.js";

export class KvCache {
  private readonly k: number[] = [];
  private readonly v: number[] = [];
  private readonly rowBytes: number;
  private disposed = false;
  /** Positions holding valid states. */
  length = 0;

  constructor(private readonly core: Core, readonly nLayer: number, readonly nCtx: number, readonly rowValues: number) {
    this.rowBytes = rowValues * 2;
    const bytes = nCtx * this.rowBytes;
    try {
      for (let l = 0; l < nLayer; l++) {
        this.k.push(core.arena.alloc(bytes));
        this.v.push(core.arena.alloc(bytes));
      }
    } catch (e) {
      this.dispose();
      throw e;
    }
  }

  get bytes(): number {
    return 2 * this.nLayer * this.nCtx * this.rowBytes;
  }

  kRow(layer: number, pos: number): number {
    return this.k[layer] + pos * this.rowBytes;
  }

  vRow(layer: number, pos: number): number {
    return this.v[layer] + pos * this.rowBytes;
  }

  dispose(): void {
    if (this.disposed) return;
    this.disposed = true;
    for (const p of [...this.k, ...this.v]) this.core.arena.release(p);
    this.k.length = 0;
    this.v.length = 0;
  }
}
