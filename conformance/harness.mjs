// Runs a KV operation corpus against Miniflare (the real workerd runtime).
//
//   node harness.mjs < corpus.json > results.json
//
// stdin: {"cases": [{"id": "...", "ops": [...]}, ...]} (op shapes: worker.mjs and driver.py).
// stdout: {"miniflare": version, "workerd": version, "results": {id: [result per op]}}.
// Every case gets its own empty KV namespace; the Worker in worker.mjs runs its ops in order.
import { readFileSync } from "node:fs";
import { Miniflare } from "miniflare";

const here = (path) => new URL(path, import.meta.url);
const versionOf = (pkg) =>
  JSON.parse(readFileSync(here(`node_modules/${pkg}/package.json`), "utf8")).version;

const { cases } = JSON.parse(readFileSync(0, "utf8"));
const bindings = Object.fromEntries(cases.map((_, i) => [`KV_${i}`, `conformance-${i}`]));

const mf = new Miniflare({
  modules: true,
  scriptPath: here("worker.mjs").pathname,
  compatibilityDate: "2026-04-01",
  kvNamespaces: bindings,
  // workerd's own output goes to stderr so that stdout carries only the results.
  handleRuntimeStdio: (stdout, stderr) => {
    stdout.pipe(process.stderr);
    stderr.pipe(process.stderr);
  },
});

try {
  const results = {};
  for (const [i, { id, ops }] of cases.entries()) {
    const response = await mf.dispatchFetch("http://conformance/", {
      method: "POST",
      body: JSON.stringify({ binding: `KV_${i}`, ops }),
    });
    if (!response.ok) throw new Error(`case ${id}: ${response.status} ${await response.text()}`);
    results[id] = await response.json();
  }
  const out = { miniflare: versionOf("miniflare"), workerd: versionOf("workerd"), results };
  process.stdout.write(JSON.stringify(out));
} finally {
  await mf.dispose();
}
