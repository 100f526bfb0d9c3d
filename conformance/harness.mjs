// Runs a KV operation corpus against Miniflare (the real workerd runtime).
//
//   node harness.mjs < corpus.json > results.json
//
// stdin: {"cases": [{"id": "...", "ops": [...]}, ...]} (op shapes: worker.mjs and driver.py).
// stdout: {"miniflare": version, "workerd": version, "results": {id: [result per op]}}.
// Every case gets its own empty KV namespace; the Worker in worker.mjs runs its ops in order.
import { runCases } from "./miniflare_cases.mjs";

await runCases(
  "worker.mjs",
  (cases) => ({
    kvNamespaces: Object.fromEntries(cases.map((_, i) => [`KV_${i}`, `conformance-${i}`])),
  }),
  ({ ops }, i) => ({ binding: `KV_${i}`, ops }),
);
