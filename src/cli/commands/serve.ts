// lora-edge serve: the OpenAI-compatible HTTP server over one base and its adapters, until SIGINT or SIGTERM.
import { parseArgs } from "node:util";
import { Command, EXIT, UsageError } from "../command.js";
import { RUNTIME_FLAGS, intFlag, openWithAdapters } from "../runtime-flags.js";
import { createServer } from "../../serve/index.js";
import { isLoopback } from "../../serve/auth.js";

const USAGE =
  "usage: lora-edge serve [-m BASE.gguf] [-a NAME=FILE[:SCALE] ...] [--host 127.0.0.1] [--port 8080] [--api-key KEY] " +
  "[--parallel N] [--queue N] [--ctx N] [--adapter-dir DIR] [--name MODEL] [--body-limit BYTES] [--backend auto|native|wasm] " +
  "[--gpu auto|off|cuda|vulkan|metal] [--threads N]   (the key may come from LORA_EDGE_API_KEY instead)";

const command: Command = {
  name: "serve",
  summary: "OpenAI-compatible server: lora-edge serve -m BASE -a NAME=FILE[:SCALE] [--port 8080] [--api-key KEY]",
  async run(argv) {
    const { values } = parseArgs({
      args: argv,
      options: {
        ...RUNTIME_FLAGS,
        host: { type: "string" },
        port: { type: "string" },
        "api-key": { type: "string" },
        parallel: { type: "string" },
        queue: { type: "string" },
        "adapter-dir": { type: "string" },
        name: { type: "string" },
        "body-limit": { type: "string" },
        help: { type: "boolean", short: "h" },
      },
    });
    if (values.help) {
      process.stdout.write(USAGE + "\n");
      return EXIT.ok;
    }
    const port = intFlag("port", values.port, 8080);
    if (port > 65535) throw new UsageError(`--port wants 0 to 65535, got "${values.port}"`);
    const options = {
      host: values.host ?? "127.0.0.1",
      port,
      apiKey: values["api-key"] ?? process.env.LORA_EDGE_API_KEY,
      parallel: intFlag("parallel", values.parallel, 4, 1),
      queue: intFlag("queue", values.queue, 64),
      adapterDir: values["adapter-dir"],
      modelName: values.name,
      bodyLimit: intFlag("body-limit", values["body-limit"], 1 << 20, 1024),
    };
    if (!isLoopback(options.host) && !options.apiKey) {
      throw new UsageError(`refusing to listen on ${options.host} without --api-key (or LORA_EDGE_API_KEY): anyone who can reach it could use the model`);
    }
    const rt = await openWithAdapters(values);
    let server;
    try {
      server = createServer(rt, options);
      const { url } = await server.listen();
      const names = rt.adapters.list().map((a) => a.name);
      process.stderr.write(
        `lora-edge: serving ${server.modelName}${names.length ? ` with adapters ${names.join(", ")}` : ""} on ${url}/v1 ` +
          `(${options.parallel} at once, ${options.queue} waiting, context ${server.scheduler.contextSize}${options.apiKey ? ", API key required" : ""})\n`,
      );
    } catch (e) {
      await rt.dispose();
      throw e;
    }
    await new Promise<void>((resolve) => {
      const stop = () => resolve();
      process.once("SIGINT", stop);
      process.once("SIGTERM", stop);
    });
    process.stderr.write("lora-edge: stopping\n");
    await server.close();
    await rt.dispose();
    return EXIT.ok;
  },
};
export default command;
