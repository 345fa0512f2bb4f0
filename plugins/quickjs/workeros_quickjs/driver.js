// The driver, evaluated once (as a script) in every prepared guest before its
// memory image is taken. It keeps the host functions in a closure, takes them
// off globalThis, and defines __wos_run(input): import the user's module ("fn",
// loaded afresh on every call: the image is restored after each one), build
// ctx over the host bridge, await the entry, and answer the outcome as JSON.
(() => {
  "use strict";
  const host = globalThis.__wos_host;
  const hostLog = globalThis.__wos_log;
  delete globalThis.__wos_host;
  delete globalThis.__wos_log;
  const parse = JSON.parse;
  const stringify = JSON.stringify;
  const freeze = Object.freeze;

  // Math.random's state is part of the memory image, so every call would draw
  // the same numbers: reseed it per call from the host (sfc32, 53-bit doubles).
  let a = 0, b = 0, c = 0, d = 0;
  function next() {
    a |= 0; b |= 0; c |= 0; d |= 0;
    const t = (((a + b) | 0) + d) | 0;
    d = (d + 1) | 0;
    a = b ^ (b >>> 9);
    b = (c + (c << 3)) | 0;
    c = (c << 21) | (c >>> 11);
    c = (c + t) | 0;
    return t >>> 0;
  }
  function seed(words) {
    [a, b, c, d] = words;
    for (let i = 0; i < 12; i++) next();
  }
  Object.defineProperty(Math, "random", {
    value: function random() { return ((next() >>> 5) * 67108864 + (next() >>> 6)) / 9007199254740992; },
    writable: true, configurable: true,
  });

  function describe(e) {
    if (e instanceof Error) {
      return { name: e.name, message: String(e.message), code: e.code === undefined ? null : String(e.code),
               stack: e.name === "SyntaxError" ? String(e.stack) : null };
    }
    let message;
    try { message = typeof e === "string" ? e : stringify(e); } catch (_) { message = String(e); }
    return { name: "Error", message: String(message), code: null };
  }

  async function call(name, args) {
    const out = parse(await host(name, stringify(args)));
    if (out.error) {
      const e = new Error(out.error.message);
      e.code = out.error.code;
      throw e;
    }
    return out.data;
  }

  function text(value) {
    if (typeof value === "string") return value;
    try { return stringify(value); } catch (_) { return String(value); }
  }

  function log(...parts) { hostLog(parts.map(text).join(" ")); }

  function items(slug) {
    slug = String(slug);
    return freeze({
      read: (query) => call("db.read", [slug, query === undefined ? {} : query]),
      create: (data) => call("db.create", [slug, data]),
      update: (key, data) => call("db.update", [slug, key, data]),
      delete: (key) => call("db.delete", [slug, key]),
      nearest: (query) => call("db.nearest", [slug, query === undefined ? {} : query]),
    });
  }

  async function fetch(url, init) {
    const r = await call("fetch", [String(url), init === undefined ? {} : init]);
    return freeze({
      status: r.status,
      ok: r.status >= 200 && r.status < 300,
      url: r.url,
      headers: freeze({ ...r.headers, get: (name) => r.headers[String(name).toLowerCase()] ?? null }),
      text: async () => r.body,
      json: async () => parse(r.body),
    });
  }

  globalThis.console = freeze({ log, info: log, warn: log, error: log });

  Object.defineProperty(globalThis, "__wos_run", {
    value: async function (raw) {
      const input = parse(raw);
      seed(input.seed);
      const ctx = freeze({
        user: input.user,
        env: freeze(input.env || {}),
        log,
        db: freeze({ items }),
        fetch,
        email: (message) => call("email", [message]),
      });
      try {
        // The host may compile and register the module "fn" in this pause (it
        // runs its top level after the seed above); else import() loads it.
        await undefined;
        const mod = await import("fn");
        const entry = mod[input.entry];
        if (typeof entry !== "function") {
          throw new TypeError(input.entry === "default"
            ? "The module has no default export function: write `export default async function (req, ctx) {...}`"
            : `The module exports no function named ${input.entry}`);
        }
        const value = await entry(input.req, ctx);
        const json = stringify({ ok: value === undefined ? null : value });
        return json === undefined ? '{"ok":null}' : json;
      } catch (e) {
        return stringify({ error: describe(e) });
      }
    },
  });
})();
