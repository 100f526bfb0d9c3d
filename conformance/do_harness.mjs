// Runs a Durable Object storage corpus against Miniflare (the real workerd runtime).
//
//   node do_harness.mjs < corpus.json > results.json
//
// stdin: {"cases": [{"id", "backend", "ops"}]}: backend "new_classes", "new_sqlite_classes" or
// "no_alarm" picks the class (do_worker.mjs). stdout: {"miniflare", "workerd", "results"}.
// Every case gets a fresh object (named by the case id).
import { runCases } from "./miniflare_cases.mjs";

const BINDINGS = {
  new_classes: "KEY_VALUE_BACKED",
  new_sqlite_classes: "SQLITE_BACKED",
  no_alarm: "WITHOUT_ALARM",
};

await runCases(
  "do_worker.mjs",
  () => ({
    durableObjects: {
      KEY_VALUE_BACKED: "KeyValueBacked",
      SQLITE_BACKED: { className: "SqliteBacked", useSQLite: true },
      WITHOUT_ALARM: { className: "WithoutAlarm", useSQLite: true },
    },
  }),
  ({ id, backend, ops }) => ({ binding: BINDINGS[backend], name: id, ops }),
);
