// One option spec per command: parsing (node's util.parseArgs), value checks and the help text all come from it.
import { parseArgs, type ParseArgsConfig } from "node:util";
import { Command, EXIT, UsageError } from "./command.js";

interface OptionBase {
  short?: string;
  /** One line for the help text. */
  help: string;
}
/** A switch: true when given. */
export interface FlagSpec extends OptionBase { kind: "flag" }
/** A string value; `choices` limits it (checked case-insensitively, returned lower-case). */
export interface StringSpec extends OptionBase {
  kind: "string";
  /** The value's name in the help text, e.g. FILE. */
  value: string;
  multiple?: boolean;
  choices?: readonly string[];
  default?: string;
}
/** A whole number within [min, max]. */
export interface IntSpec extends OptionBase { kind: "int"; value?: string; min: number; max?: number; default?: number }
/** A finite number within its bounds; `above` makes the lower bound exclusive. */
export interface NumberSpec extends OptionBase { kind: "number"; value?: string; min?: number; above?: number; max?: number; default?: number }
export type OptionSpec = FlagSpec | StringSpec | IntSpec | NumberSpec;

export interface CommandSpec<O extends Record<string, OptionSpec> = Record<string, OptionSpec>> {
  name: string;
  /** One line for the command table. */
  summary: string;
  /** Synopsis lines after "lora-edge NAME". */
  usage: readonly string[];
  options: O;
  /** How many positional arguments are allowed (default 0..0). */
  positionals?: { min?: number; max?: number };
  /** Paragraphs after the option list. */
  notes?: string;
}

type ValueOf<S> = S extends FlagSpec ? boolean
  : S extends { kind: "string"; multiple: true } ? string[]
  : S extends StringSpec ? string
  : number;
/** The parsed values of a spec: options with a default are always present. */
export type Values<O extends Record<string, OptionSpec>> = {
  [K in keyof O]: O[K] extends { default: unknown } ? ValueOf<O[K]> : ValueOf<O[K]> | undefined;
};

const HELP: FlagSpec = { kind: "flag", short: "h", help: "show this help" };

/** The accepted range of a number option, e.g. ">= 1", "0 to 1", "> 0 and <= 1" ("" when unbounded). */
function rangeText(s: IntSpec | NumberSpec): string {
  const strict = s.kind === "number" && s.above !== undefined;
  const lo = strict ? (s as NumberSpec).above : s.min;
  if (lo !== undefined && s.max !== undefined) return strict ? `> ${lo} and <= ${s.max}` : `${lo} to ${s.max}`;
  if (lo !== undefined) return `${strict ? ">" : ">="} ${lo}`;
  return s.max !== undefined ? `<= ${s.max}` : "";
}

/** An option's left column (flags and value name) and right column (help, range or choices, default). */
function describe(name: string, s: OptionSpec): { left: string; right: string } {
  const flag = `${s.short ? `-${s.short}, ` : "    "}--${name}`;
  if (s.kind === "flag") return { left: flag, right: s.help };
  const value = s.kind === "string" ? (s.choices ? s.choices.join("|") : s.value) : s.value ?? (s.kind === "int" ? "N" : "X");
  const notes: string[] = [];
  if (s.kind !== "string" && rangeText(s)) notes.push(rangeText(s));
  if (s.default !== undefined) notes.push(`default ${s.default}`);
  if (s.kind === "string" && s.multiple) notes.push("repeatable");
  return { left: `${flag} ${value}`, right: s.help + (notes.length ? ` (${notes.join("; ")})` : "") };
}

/** The full help text of a command, generated from its spec. */
export function helpText(spec: CommandSpec): string {
  const lines = spec.usage.map((u, i) => `${i === 0 ? "usage:" : "      "} lora-edge ${spec.name}${u ? ` ${u}` : ""}`);
  lines.push("", spec.summary, "", "options:");
  const rows = Object.entries({ ...spec.options, help: HELP }).map(([n, s]) => describe(n, s));
  const w = Math.min(34, Math.max(...rows.map((r) => r.left.length)));
  for (const r of rows) lines.push(r.left.length > w ? `  ${r.left}\n  ${" ".repeat(w)}  ${r.right}` : `  ${r.left.padEnd(w)}  ${r.right}`);
  if (spec.notes) lines.push("", spec.notes.trimEnd());
  return lines.join("\n") + "\n";
}

/** The short usage shown with a usage error. */
export function usageLines(spec: CommandSpec): string {
  return spec.usage.map((u, i) => `${i === 0 ? "usage:" : "      "} lora-edge ${spec.name}${u ? ` ${u}` : ""}`).join("\n") +
    `\n(lora-edge ${spec.name} --help for every option)`;
}

/**
 * An option that takes a value takes the next argument whatever it looks like, as getopt does: `-n -1` and
 * `-p "-x"` reach the value checks instead of failing as ambiguous. Rewritten as --name=value for parseArgs.
 */
function joinValues(argv: readonly string[], options: Record<string, OptionSpec>): string[] {
  const byShort = new Map(Object.entries(options).filter(([, s]) => s.short).map(([n, s]) => [s.short!, n]));
  const out: string[] = [];
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i];
    if (a === "--") { out.push(...argv.slice(i)); break; }
    const name = a.startsWith("--") ? a.slice(2) : /^-[A-Za-z]$/.test(a) ? byShort.get(a.slice(1)) : undefined;
    const s = name !== undefined && !name.includes("=") ? options[name] : undefined;
    if (s && s.kind !== "flag" && i + 1 < argv.length) {
      out.push(`--${name}=${argv[++i]}`);
    } else out.push(a);
  }
  return out;
}

function checkValue(name: string, s: OptionSpec, raw: string): string | number {
  if (s.kind === "string") {
    if (!s.choices) return raw;
    const v = raw.toLowerCase();
    if (!s.choices.includes(v)) throw new UsageError(`--${name} wants ${s.choices.join(", ")}; got "${raw}"`);
    return v;
  }
  if (s.kind === "flag") return raw;
  const n = raw.trim() === "" ? NaN : Number(raw);
  const range = rangeText(s);
  const bad = () => new UsageError(`--${name} wants ${s.kind === "int" ? "a whole number" : "a number"}${range ? ` ${range}` : ""}; got "${raw}"`);
  if (!Number.isFinite(n)) throw bad();
  if (s.kind === "int" && (!Number.isInteger(n) || n < s.min || (s.max !== undefined && n > s.max))) throw bad();
  if (s.kind === "number") {
    if (s.min !== undefined && n < s.min) throw bad();
    if (s.above !== undefined && n <= s.above) throw bad();
    if (s.max !== undefined && n > s.max) throw bad();
  }
  return n;
}

/** Parses `argv` against a spec: values checked and converted, defaults filled in; throws UsageError. */
export function parseCommand<O extends Record<string, OptionSpec>>(spec: CommandSpec<O>, argv: readonly string[]): { values: Values<O>; positionals: string[]; help: boolean } {
  const all: Record<string, OptionSpec> = { ...spec.options, help: HELP };
  const config: ParseArgsConfig["options"] = {};
  for (const [n, s] of Object.entries(all)) {
    config[n] = { type: s.kind === "flag" ? "boolean" : "string", ...(s.short ? { short: s.short } : {}), ...(s.kind === "string" && s.multiple ? { multiple: true } : {}) };
  }
  let parsed: ReturnType<typeof parseArgs>;
  try {
    parsed = parseArgs({ args: joinValues(argv, all), options: config, allowPositionals: true, strict: true });
  } catch (e) {
    const code = String((e as { code?: unknown }).code ?? "");
    if (!code.startsWith("ERR_PARSE_ARGS")) throw e;
    const unknown = /Unknown option '([^']+)'/.exec((e as Error).message);
    if (unknown) throw new UsageError(`unknown option ${unknown[1]} for lora-edge ${spec.name}\n${usageLines(spec)}`);
    const missing = /Option '([^']+)' argument missing/.exec((e as Error).message);
    if (missing) throw new UsageError(`${missing[1].replace(/ <value>$/, "")} needs a value\n${usageLines(spec)}`);
    throw new UsageError(`${(e as Error).message}\n${usageLines(spec)}`);
  }
  const raw = parsed.values as Record<string, string | boolean | string[] | undefined>;
  if (raw.help) return { values: {} as Values<O>, positionals: parsed.positionals, help: true };
  const values: Record<string, unknown> = {};
  for (const [n, s] of Object.entries(spec.options)) {
    const v = raw[n];
    if (v === undefined) values[n] = s.kind === "flag" ? undefined : s.default;
    else if (s.kind === "flag") values[n] = v;
    else if (Array.isArray(v)) values[n] = v.map((x) => checkValue(n, s, x));
    else values[n] = checkValue(n, s, v as string);
  }
  const { min = 0, max = 0 } = spec.positionals ?? {};
  const n = parsed.positionals.length;
  if (n > max) throw new UsageError(`unexpected argument "${parsed.positionals[max]}"\n${usageLines(spec)}`);
  if (n < min) throw new UsageError(`lora-edge ${spec.name} needs ${min === max ? min : `at least ${min}`} argument${min === 1 ? "" : "s"}\n${usageLines(spec)}`);
  return { values: values as Values<O>, positionals: parsed.positionals, help: false };
}

/** A command from its spec and a handler: `--help` prints the generated help; values arrive checked. */
export function defineCommand<O extends Record<string, OptionSpec>>(
  spec: CommandSpec<O>,
  handler: (values: Values<O>, positionals: string[], argv: readonly string[]) => Promise<number>,
): Command & { spec: CommandSpec<O> } {
  return {
    name: spec.name,
    summary: spec.summary,
    spec,
    async run(argv) {
      const { values, positionals, help } = parseCommand(spec, argv);
      if (help) {
        process.stdout.write(helpText(spec));
        return EXIT.ok;
      }
      try {
        return await handler(values, positionals, argv);
      } catch (e) {
        if (e instanceof UsageError && e.withUsage) throw new UsageError(`${e.message}\n${usageLines(spec)}`);
        throw e;
      }
    },
  };
}

/** A usage error that the command's usage lines follow when it is reported. */
export function usage(message: string): UsageError {
  return new UsageError(message, { withUsage: true });
}
