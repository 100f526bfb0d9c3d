// What harness.mjs and do_harness.mjs share: read the corpus from stdin, start Miniflare once
// with the given Worker and bindings, POST each case to it, and write
// {"miniflare", "workerd", "results": {id: [result per op]}} on stdout.
import { readFileSync } from "node:fs";
import { Miniflare } from "miniflare";

const here = (path) => new URL(path, import.meta.url);
const versionOf = (pkg) =>
  JSON.parse(readFileSync(here(`node_modules/${pkg}/package.json`), "utf8")).version;

// options(cases): Miniflare's options beside the script; body(case, index): the POST body.
export async function runCases(script, options, body) {
  const { cases } = JSON.parse(readFileSync(0, "utf8"));
  const mf = new Miniflare({
    modules: true,
    scriptPath: here(script).pathname,
    compatibilityDate: "2026-04-01",
    ...options(cases),
    // workerd's own output goes to stderr so that stdout carries only the results.
    handleRuntimeStdio: (stdout, stderr) => {
      stdout.pipe(process.stderr);
      stderr.pipe(process.stderr);
    },
  });
  try {
    const results = {};
    for (const [i, testCase] of cases.entries()) {
      const response = await mf.dispatchFetch("http://conformance/", {
        method: "POST",
        body: JSON.stringify(body(testCase, i)),
      });
      if (!response.ok) {
        throw new Error(`case ${testCase.id}: ${response.status} ${await response.text()}`);
      }
      results[testCase.id] = await response.json();
    }
    const out = { miniflare: versionOf("miniflare"), workerd: versionOf("workerd"), results };
    process.stdout.write(JSON.stringify(out));
  } finally {
    await mf.dispose();
  }
}
