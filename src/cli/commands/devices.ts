// lora-edge devices: the detected device profile, its facts, and (with -m) the memory plan for a model.
import { readFileSync } from "node:fs";
import { EXIT } from "../command.js";
import { defineCommand, usage } from "../spec.js";
import { detect } from "../../devices/detect.js";
import { liveSource, recordFacts, recordedSource, type FactsRecording, type FactsSource } from "../../devices/facts.js";
import { getProfile, loadProfiles } from "../../devices/profiles.js";
import { factsForProfile, planWithFacts, DoesNotFitError } from "../../devices/plan.js";
import { formatDetection, formatPlan } from "../../devices/format.js";

export default defineCommand({
  name: "devices",
  summary: "detected device profile, facts, and the memory plan for a model: lora-edge devices [-m MODEL] [--json]",
  usage: [
    "[-m MODEL.gguf [-a ADAPTER.gguf ...] [-c CONTEXT] [-b BATCH]] [--profile NAME] [--facts FILE.json] [--json]",
    "--list [--json]",
    "--record",
  ],
  options: {
    model: { kind: "string", short: "m", value: "FILE", help: "plan the memory for this model" },
    adapter: { kind: "string", short: "a", value: "FILE", multiple: true, help: "adapters to count in the plan (needs -m)" },
    context: { kind: "int", short: "c", min: 1, help: "context size of the plan (needs -m; default: the profile's)" },
    batch: { kind: "int", short: "b", min: 1, help: "batch size of the plan (needs -m; default: the profile's)" },
    profile: { kind: "string", value: "NAME", help: "plan for this profile's device and its reference memory instead of this machine (devices --list)" },
    memory: { kind: "number", above: 0, value: "GIB", help: "with --profile: the device's memory in GiB instead of the profile's reference" },
    vram: { kind: "number", above: 0, value: "GIB", help: "with --profile of a discrete GPU: its VRAM in GiB instead of the profile's reference" },
    facts: { kind: "string", value: "FILE", help: "a facts recording (devices --record) instead of this machine's" },
    list: { kind: "flag", help: "list the device profiles" },
    record: { kind: "flag", help: "print this machine's facts as a recording" },
    json: { kind: "flag", help: "print JSON" },
  },
}, async (values) => {
  const contextSize = values.context;
  const batchSize = values.batch;
  if (values.list) {
    const all = loadProfiles();
    if (values.json) process.stdout.write(JSON.stringify(all, null, 2) + "\n");
    else for (const p of all) process.stdout.write(`${p.name.padEnd(20)} ${p.gpu || "cpu"}`.padEnd(28) + ` ${p.memory.model.padEnd(9)} ${p.title}\n`);
    return EXIT.ok;
  }
  if (!values.model && (values.adapter || contextSize || batchSize)) throw usage("-a, -c and -b need -m MODEL");
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
  if ((values.memory !== undefined || values.vram !== undefined) && (!values.profile || values.facts)) throw usage("--memory and --vram go with --profile (and not with --facts)");
  const d = await detect(source);
  const profile = values.profile ? getProfile(values.profile) : d.profile;
  let planned = "";
  if (values.profile) {
    d.profile = profile;
    // A profile named without a recording: plan against that device's memory, not this machine's.
    if (!values.facts) {
      d.facts = factsForProfile(profile, d.facts, { memoryBytes: values.memory && values.memory * 2 ** 30, vramBytes: values.vram && values.vram * 2 ** 30 });
      const gib = (b: number) => `${+(b / 2 ** 30).toFixed(2)} GiB`;
      const vram = d.facts.gpu.vram ? `, ${gib(d.facts.gpu.vram.total)} of VRAM` : "";
      planned = `planned for ${profile.name} with ${gib(d.facts.memory.totalBytes)} of memory${vram} ` +
        `(${values.memory || values.vram ? "as given" : "the profile's reference device; --memory and --vram change it"}), not this machine`;
    }
  }
  let planOut: unknown;
  let refusal: DoesNotFitError | undefined;
  if (values.model) {
    try {
      planOut = planWithFacts({ model: values.model, adapters: values.adapter ?? [], contextSize, batchSize, profile }, d.facts);
      if (planned) (planOut as { notes: string[] }).notes.unshift(planned);
    } catch (e) {
      if (!(e instanceof DoesNotFitError)) throw e;
      refusal = e;
      if (planned) refusal.plan.notes.unshift(planned);
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
});
