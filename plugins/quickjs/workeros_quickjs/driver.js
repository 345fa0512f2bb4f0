// Runs one invocation: imports the user's module ("fn"), builds ctx over the
// host bridge, awaits the entry, and leaves the outcome as JSON in __wos_out.
import * as mod from "fn";

const input = JSON.parse(globalThis.__wos_input);
const host = globalThis.__wos_host;
const hostLog = globalThis.__wos_log;

function describe(e) {
  if (e instanceof Error) {
    return { name: e.name, message: String(e.message), code: e.code === undefined ? null : String(e.code) };
  }
  let message;
  try { message = typeof e === "string" ? e : JSON.stringify(e); } catch (_) { message = String(e); }
  return { name: "Error", message: String(message), code: null };
}

async function call(name, args) {
  const out = JSON.parse(await host(name, JSON.stringify(args)));
  if (out.error) {
    const e = new Error(out.error.message);
    e.code = out.error.code;
    throw e;
  }
  return out.data;
}

function text(value) {
  if (typeof value === "string") return value;
  try { return JSON.stringify(value); } catch (_) { return String(value); }
}

function log(...parts) { hostLog(parts.map(text).join(" ")); }

function items(slug) {
  slug = String(slug);
  return Object.freeze({
    read: (query) => call("db.read", [slug, query === undefined ? {} : query]),
    create: (data) => call("db.create", [slug, data]),
    update: (key, data) => call("db.update", [slug, key, data]),
    delete: (key) => call("db.delete", [slug, key]),
    nearest: (query) => call("db.nearest", [slug, query === undefined ? {} : query]),
  });
}

async function fetch(url, init) {
  const r = await call("fetch", [String(url), init === undefined ? {} : init]);
  return Object.freeze({
    status: r.status,
    ok: r.status >= 200 && r.status < 300,
    url: r.url,
    headers: Object.freeze({ ...r.headers, get: (name) => r.headers[String(name).toLowerCase()] ?? null }),
    text: async () => r.body,
    json: async () => JSON.parse(r.body),
  });
}

const ctx = Object.freeze({
  user: input.user,
  env: Object.freeze(input.env || {}),
  log,
  db: Object.freeze({ items }),
  fetch,
  email: (message) => call("email", [message]),
});
globalThis.console = Object.freeze({ log, info: log, warn: log, error: log });

try {
  const entry = mod[input.entry];
  if (typeof entry !== "function") {
    throw new TypeError(input.entry === "default"
      ? "The module has no default export function: write `export default async function (req, ctx) {...}`"
      : `The module exports no function named ${input.entry}`);
  }
  const value = await entry(input.req, ctx);
  const json = JSON.stringify({ ok: value === undefined ? null : value });
  globalThis.__wos_out = json === undefined ? '{"ok":null}' : json;
} catch (e) {
  globalThis.__wos_out = JSON.stringify({ error: describe(e) });
}
