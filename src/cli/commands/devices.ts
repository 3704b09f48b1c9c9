// lora-edge devices: the detected device profile, its facts, and (with -m) the memory plan for a model.
import { parseArgs } from "node:util";
import { readFileSync } from "node:fs";
import { Command, EXIT, UsageError } from "../command.js";
import { detect } from "../../devices/detect.js";
import { liveSource, recordFacts, recordedSource, type FactsRecording, type FactsSource } from "../../devices/facts.js";
import { getProfile, loadProfiles } from "../../devices/profiles.js";
import { planWithFacts, DoesNotFitError } from "../../devices/plan.js";
import { formatDetection, formatPlan } from "../../devices/format.js";

const USAGE = "usage: lora-edge devices [-m MODEL.gguf [-a ADAPTER.gguf ...] [-c CONTEXT]] [--profile NAME] [--facts FILE.json] [--json] | --list | --record";

const command: Command = {
  name: "devices",
  summary: "detected device profile, facts, and the memory plan for a model: lora-edge devices [-m MODEL] [--json]",
  async run(argv) {
    const { values, positionals } = parseArgs({
      args: argv, allowPositionals: true,
      options: {
        model: { type: "string", short: "m" },
        adapter: { type: "string", short: "a", multiple: true },
        context: { type: "string", short: "c" },
        batch: { type: "string", short: "b" },
        profile: { type: "string" },
        facts: { type: "string" },
        json: { type: "boolean" },
        list: { type: "boolean" },
        record: { type: "boolean" },
        help: { type: "boolean", short: "h" },
      },
    });
    if (values.help) { process.stdout.write(USAGE + "\n"); return EXIT.ok; }
    if (positionals.length) throw new UsageError(`unexpected argument "${positionals[0]}"\n${USAGE}`);
    const int = (v: string | undefined, name: string) => {
      if (v === undefined) return undefined;
      if (!/^\d+$/.test(v) || Number(v) < 1) throw new UsageError(`--${name} must be a positive integer, got "${v}"`);
      return Number(v);
    };
    const contextSize = int(values.context, "context");
    const batchSize = int(values.batch, "batch");
    if (values.list) {
      const all = loadProfiles();
      if (values.json) process.stdout.write(JSON.stringify(all, null, 2) + "\n");
      else for (const p of all) process.stdout.write(`${p.name.padEnd(20)} ${p.gpu || "cpu"}`.padEnd(28) + ` ${p.memory.model.padEnd(9)} ${p.title}\n`);
      return EXIT.ok;
    }
    if (!values.model && (values.adapter || contextSize || batchSize)) throw new UsageError("-a, -c and -b need -m MODEL");
    let source: FactsSource = liveSource();
    if (values.facts) {
      let rec: FactsRecording;
      try {
        rec = JSON.parse(readFileSync(values.facts, "utf8")) as FactsRecording;
      } catch (e) {
        throw new Error(`${values.facts}: cannot read a facts recording: ${(e as Error).message}`);
      }
      if (rec.recordingVersion !== 1 || !rec.os || !rec.files) throw new Error(`${values.facts}: not a facts recording (recordingVersion 1)`);
      source = recordedSource(rec);
    }
    if (values.record) {
      process.stdout.write(JSON.stringify(await recordFacts(source), null, 1) + "\n");
      return EXIT.ok;
    }
    const d = await detect(source);
    const profile = values.profile ? getProfile(values.profile) : d.profile;
    if (values.profile) d.profile = profile;
    let planOut: unknown;
    let refusal: DoesNotFitError | undefined;
    if (values.model) {
      try {
        planOut = planWithFacts({ model: values.model, adapters: values.adapter ?? [], contextSize, batchSize, profile }, d.facts);
      } catch (e) {
        if (!(e instanceof DoesNotFitError)) throw e;
        refusal = e;
      }
    }
    if (values.json) {
      const { file: _file, ...prof } = profile;
      void _file;
      const out = {
        profile: prof, reasons: d.reasons, alsoMatched: d.alsoMatched, threads: d.threads, warnings: d.warnings, notes: d.notes, facts: d.facts,
        ...(planOut ? { plan: planOut } : {}),
        ...(refusal ? { refusal: { code: refusal.code, where: refusal.where, neededBytes: refusal.neededBytes,
          availableBytes: refusal.availableBytes, maxContextSize: refusal.plan.maxContextSize, message: refusal.message, plan: refusal.plan } } : {}),
      };
      process.stdout.write(JSON.stringify(out, null, 2) + "\n");
    } else {
      process.stdout.write(formatDetection(d));
      if (planOut) process.stdout.write("\n" + formatPlan(planOut as Parameters<typeof formatPlan>[0]));
      if (refusal) {
        process.stdout.write("\n" + formatPlan(refusal.plan));
        process.stderr.write(`lora-edge: ${refusal.message}\n`);
      }
    }
    return refusal ? EXIT.fail : EXIT.ok;
  },
};
export default command;
