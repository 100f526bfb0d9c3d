// The Worker do_harness.mjs runs in Miniflare: POST one case ({binding, ops}) and a Durable
// Object of that binding's class (a fresh one per case) runs the ops in order on its
// ctx.storage, answering one result per op (the shapes are do_storage.py's).
import { DurableObject } from "cloudflare:workers";

async function runOps(storage, ops) {
  const results = [];
  for (const op of ops) {
    try {
      results.push({ ok: shown(await call(storage, op)) });
    } catch (error) {
      results.push({ error: { name: error.name, message: error.message } });
    }
  }
  return results;
}

function call(storage, op) {
  switch (op.op) {
    case "put":
      return storage.put(value(op.key), value(op.value));
    case "putUndefined":
      return storage.put(value(op.key), undefined);
    case "putMany":
      return storage.put(Object.fromEntries(op.entries.map(([k, v]) => [value(k), value(v)])));
    case "get":
      return storage.get(value(op.key));
    case "getMany":
      return storage.get(op.keys.map(value));
    case "delete":
      return storage.delete(value(op.key));
    case "deleteMany":
      return storage.delete(op.keys.map(value));
    case "deleteAll":
      return storage.deleteAll();
    case "list":
      return storage.list(op.options ?? {});
    case "setAlarm":
      return storage.setAlarm(op.at);
    case "getAlarm":
      return storage.getAlarm();
    default:
      throw new Error(`do_worker: unknown op ${op.op}`);
  }
}

// {"$repeat": text, "times": n} is text repeated n times (keys and values too long for JSON).
function value(spec) {
  if (spec && typeof spec === "object" && "$repeat" in spec) return spec.$repeat.repeat(spec.times);
  return spec;
}

// Results as JSON: undefined as null, a Map as its entries, long strings by their length.
function shown(result) {
  if (result === undefined) return null;
  if (result instanceof Map) return [...result.entries()].map(([k, v]) => [shown(k), shown(v)]);
  if (typeof result === "string" && result.length > 64) return { $length: result.length };
  return result;
}

class Storage extends DurableObject {
  async run(ops) {
    return runOps(this.ctx.storage, ops);
  }
}

export class KeyValueBacked extends Storage {
  async alarm() {}
}

export class SqliteBacked extends Storage {
  async alarm() {}
}

export class WithoutAlarm extends Storage {}

export default {
  async fetch(request, env) {
    const { binding, name, ops } = await request.json();
    const namespace = env[binding];
    return Response.json(await namespace.get(namespace.idFromName(name)).run(ops));
  },
};
