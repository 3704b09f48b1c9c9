// The rule for a new adapter's name and load scale, shared by the Node runtime and the web engine.
import { AdapterNameError, InvalidArgumentError } from "../errors.js";
import { scaleProblem } from "../gguf/adapter.js";

/** Checks the name and scale of an adapter about to be loaded (`taken`: whether the name is in use); returns the scale. */
export function checkNewAdapter(name: string, scale: number | undefined, taken: (name: string) => boolean): number {
  if (typeof name !== "string" || name.length === 0 || /[,=:\s]/.test(name)) {
    throw new AdapterNameError(String(name), `adapter name "${name}" must be non-empty, without spaces, ",", "=" or ":"`);
  }
  if (taken(name)) throw new AdapterNameError(name, `an adapter named "${name}" is already loaded`);
  const s = scale ?? 1;
  const bad = scaleProblem(s);
  if (bad) throw new InvalidArgumentError(`adapter "${name}": bad scale: ${bad}`);
  return s;
}
