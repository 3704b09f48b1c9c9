// Source of a kernel worker (Node worker_threads or a Web Worker): instantiates the shared-memory build and runs calls posted through an Atomics slot.

/** Numbers one call takes in the shared queue: function, argument count, up to 14 arguments. */
export const QUEUE_RECORD = 16;
/** Calls the shared queue holds (more run in several batches). */
export const QUEUE_CALLS = 256;

/**
 * The call loop, run once the worker has `module`, `memory`, `control`, `names`, `spinPolls` and `ready()`. See
 * pool.ts for the slot layout: calls are [function number, argument count, arguments...] as Float64. Between
 * rounds the worker polls its slot `spinPolls` times before it sleeps, so a round posted soon after the last one
 * starts without a wake-up.
 */
const CALL_LOOP = `const inst = new WebAssembly.Instance(module, { env: { memory, abort() { throw new Error("wasm abort"); } } });
const fns = names.map((n) => inst.exports[n]);
const ctl = new Int32Array(control);
const f64 = new Float64Array(control, 64);
ready();
const queue = { buf: null, at: -1, head: null, rec: null };
let seen = 0;
for (;;) {
  for (let k = 0; k < spinPolls && Atomics.load(ctl, 0) === seen; k++);
  Atomics.wait(ctl, 0, seen);
  const seq = Atomics.load(ctl, 0);
  if (seq === seen) continue;
  seen = seq;
  const count = ctl[2];
  if (count === -1) break;
  let err = 0;
  try {
    if (count === -2) {
      // the shared queue: Int32 next call and call count, then records of ${QUEUE_RECORD} numbers (function, count, arguments)
      const q = ctl[3], buf = memory.buffer;
      // views made again only when the memory has grown or the queue has moved (no garbage per round)
      if (buf !== queue.buf || q !== queue.at) {
        queue.buf = buf;
        queue.at = q;
        queue.head = new Int32Array(buf, q, 2);
        queue.rec = new Float64Array(buf, q + 64, ${QUEUE_RECORD * QUEUE_CALLS});
      }
      const head = queue.head, rec = queue.rec, total = Atomics.load(head, 1);
      for (let i = Atomics.add(head, 0, 1); i < total; i = Atomics.add(head, 0, 1)) call(fns[rec[i * ${QUEUE_RECORD}]], rec[i * ${QUEUE_RECORD} + 1], rec, i * ${QUEUE_RECORD} + 2);
    } else {
      let o = 0;
      for (let c = 0; c < count; c++) {
        const n = f64[o + 1];
        call(fns[f64[o]], n, f64, o + 2);
        o += 2 + n;
      }
    }
  } catch (e) {
    err = 1;
  }
  ctl[4] = err;
  Atomics.store(ctl, 1, seq);
  Atomics.notify(ctl, 1);
}
/** Calls f with the n arguments at f64[a..a+n). */
function call(f, n, f64, a) {
  // the common argument counts without an array per call (no garbage in the worker's heap)
  ${Array.from({ length: 12 }, (_, i) => i + 5).map((k) => `${k === 5 ? "if" : "else if"} (n === ${k}) f(${Array.from({ length: k }, (_, j) => `f64[a + ${j}]`).join(", ")});`).join("\n  ")}
  else f(...Array.from(f64.subarray(a, a + n)));
}
`;

/** Source of a Node worker_threads worker: started with eval and workerData. */
export function nodeWorkerSource(): string {
  return `
const { workerData, parentPort } = require("node:worker_threads");
const { module, memory, control, names, spinPolls } = workerData;
const ready = () => parentPort.postMessage("ready");
${CALL_LOOP}`;
}

/** A Web Worker (classic, from a blob URL): its first message carries the worker's data. */
export function webWorkerSource(): string {
  return `
self.onmessage = (ev) => {
  self.onmessage = null;
  const { module, memory, control, names, spinPolls } = ev.data;
  const ready = () => self.postMessage("ready");
  try {
    run(module, memory, control, names, spinPolls, ready);
  } catch (e) {
    self.postMessage({ error: String(e && e.message || e) });
  }
};
function run(module, memory, control, names, spinPolls, ready) {
${CALL_LOOP}}
`;
}
