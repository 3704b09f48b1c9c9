// Public surface of the serve layer: createServer and its options.
export { createServer, LoraEdgeServer, type ListenAddress, type ServeOptions } from "./server.js";
