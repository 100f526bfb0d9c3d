// The Worker the harness runs in Miniflare: POST one case ({binding, ops}) and it runs the
// ops in order against that KV binding, answering one result per op. Running inside workerd
// (rather than through Miniflare's Node proxy) means the real binding sees the arguments, as
// a deployed Worker's would: the proxy's serialisation rewrites some of them (lone surrogates).

const MAX_TRIES = 5;

export default {
  async fetch(request, env) {
    const { binding, ops } = await request.json();
    const kv = env[binding];
    const results = [];
    for (const op of ops) results.push(await run(kv, op));
    return Response.json(results);
  },
};

async function run(kv, op) {
  if (op.op === "fill") return fill(kv, op);
  if (op.op === "listAll") return listAll(kv, op.options ?? {});
  if (op.op !== "put" || !timed(op.options)) return outcome(() => call(kv, op, nowSeconds()));
  // A put whose outcome depends on the clock is retried until it starts and ends within one
  // UTC second, so the driver can replay it at that second on the virtual clock.
  for (let attempt = 1; ; attempt++) {
    const before = Date.now();
    const result = await outcome(() => call(kv, op, Math.floor(before / 1000)));
    const after = Date.now();
    if (Math.floor(before / 1000) === Math.floor(after / 1000) || attempt === MAX_TRIES) {
      return { ...result, at: before / 1000 };
    }
  }
}

function call(kv, op, now) {
  switch (op.op) {
    case "put":
      return kv.put(op.key, value(op.value), options(op.options, now));
    case "get":
      return kv.get(op.key, op.type ?? "text").then((v) => read(v, op));
    case "getWithMetadata":
      return kv.getWithMetadata(op.key, op.type ?? "text").then(async (r) => ({
        value: await read(r.value, op),
        metadata: r.metadata,
      }));
    case "delete":
      return kv.delete(op.key);
    case "list":
      return kv.list(options(op.options, now)).then(page);
    default:
      throw new Error(`harness: unknown op ${op.op}`);
  }
}

async function outcome(thunk) {
  try {
    const result = await thunk();
    return { ok: result === undefined ? null : result };
  } catch (error) {
    return { error: { name: error.name, message: error.message } };
  }
}

// Puts "v" under `count` keys `${prefix}${i}` (i zero-padded to 5 digits), 50 at a time.
async function fill(kv, { prefix, count }) {
  let ok = 0;
  const errors = [];
  for (let start = 0; start < count; start += 50) {
    const batch = [];
    for (let i = start; i < Math.min(start + 50, count); i++) {
      batch.push(outcome(() => kv.put(prefix + String(i).padStart(5, "0"), "v")));
    }
    for (const result of await Promise.all(batch)) {
      if (result.error) errors.push(result.error);
      else ok++;
    }
  }
  return { ok: { ok, errors: errors.slice(0, 1) } };
}

// Follows cursors from the first page to the last (at most 100 pages).
async function listAll(kv, options) {
  const pages = [];
  let cursor;
  for (let n = 0; n < 100; n++) {
    const result = await outcome(() => kv.list({ ...options, cursor }).then(page));
    pages.push(result);
    if (result.error || result.ok.list_complete) break;
    cursor = result.ok.cursor;
  }
  return { ok: pages };
}

function page({ keys, list_complete, cursor }) {
  return list_complete ? { keys, list_complete } : { keys, list_complete, cursor };
}

async function read(v, op) {
  if (v === null) return null;
  if (op.digest) return digest(typeof v === "string" ? new TextEncoder().encode(v) : v);
  if (v instanceof ArrayBuffer) return { hex: hex(new Uint8Array(v)) };
  return v;
}

async function digest(bytes) {
  const sum = await crypto.subtle.digest("SHA-256", bytes);
  return { sha256: hex(new Uint8Array(sum)), length: bytes.byteLength };
}

function hex(bytes) {
  return Array.from(bytes, (b) => b.toString(16).padStart(2, "0")).join("");
}

// Corpus values that JSON can't carry: {"repeat": s, "times": n}, {"hex": "..."}.
function value(spec) {
  if (typeof spec === "string") return spec;
  if (spec.repeat !== undefined) return spec.repeat.repeat(spec.times);
  if (spec.hex !== undefined) return new Uint8Array(spec.hex.match(/../g)?.map((h) => parseInt(h, 16)) ?? []);
  throw new Error(`harness: bad value spec ${JSON.stringify(spec)}`);
}

// Option values that JSON can't carry: {"$number": "NaN"}, {"$fromNow": seconds}.
function options(spec, now) {
  if (spec === undefined) return undefined;
  return JSON.parse(JSON.stringify(spec), (_, v) => {
    if (v !== null && typeof v === "object" && "$number" in v) return Number(v.$number);
    if (v !== null && typeof v === "object" && "$fromNow" in v) return now + v.$fromNow;
    return v;
  });
}

function timed(spec) {
  return spec !== undefined && ("expiration" in spec || "expirationTtl" in spec);
}

function nowSeconds() {
  return Math.floor(Date.now() / 1000);
}
