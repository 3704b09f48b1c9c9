// Clean-up on SIGINT, SIGTERM and SIGHUP: registered actions run, then the process ends as the signal would end it.

type Action = () => void;

const SIGNALS = ["SIGINT", "SIGTERM", "SIGHUP"] as const;
const SIGNAL_NUMBERS: Record<string, number> = { SIGHUP: 1, SIGINT: 2, SIGTERM: 15 };
const actions = new Set<Action>();
let installed = false;
let removal: ReturnType<typeof setTimeout> | undefined;

function handle(signal: NodeJS.Signals): void {
  // An application that listens for this signal itself decides what happens; writers clean up when they fail.
  if (process.listenerCount(signal) > 1) return;
  for (const a of [...actions]) {
    try { a(); } catch { /* the next action still runs */ }
  }
  actions.clear();
  uninstall();
  // With no listener left the signal's default action applies again: end the process as the signal would.
  process.exitCode = 128 + (SIGNAL_NUMBERS[signal] ?? 0);
  process.kill(process.pid, signal);
}

function install(): void {
  if (removal) { clearTimeout(removal); removal = undefined; }
  if (installed) return;
  for (const s of SIGNALS) process.on(s, handle);
  installed = true;
}

function uninstall(): void {
  if (removal) { clearTimeout(removal); removal = undefined; }
  if (!installed) return;
  for (const s of SIGNALS) process.removeListener(s, handle);
  installed = false;
}

/**
 * Runs `action` (synchronously: remove a temp file, show the cursor) if SIGINT, SIGTERM or SIGHUP arrives
 * before the returned release function is called; the process then ends by that signal (shells report
 * 130, 143, 129). While nothing is registered the signals keep their default action. Work that runs
 * synchronously delays a signal's handling until it yields, so long writers yield between pieces.
 */
export function onInterrupt(action: Action): () => void {
  actions.add(action);
  install();
  let released = false;
  return () => {
    if (released) return;
    released = true;
    actions.delete(action);
    // Leave the handlers in place a moment: a signal that arrived during synchronous work is still queued
    // and must reach them (removing them now would drop it, and the process would ignore the signal).
    if (actions.size === 0 && installed && !removal) {
      removal = setTimeout(uninstall, 50);
      removal.unref();
    }
  };
}
