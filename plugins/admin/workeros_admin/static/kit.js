// The admin app's kit: what every page (core or plugin) imports as "workeros-admin".
// The API client (Bearer tokens, refresh), translations, realtime and shared components.
import { h, render, Fragment } from "preact";
import { useState, useEffect, useRef, useMemo, useCallback } from "preact/hooks";
import htm from "htm";

export const html = htm.bind(h);
export { h, render, Fragment, useState, useEffect, useRef, useMemo, useCallback };

// -- translations: one catalogue --------------------------------------------------------
const catalogue = await (await fetch("/admin/static/i18n/en.json")).json();

/** Translate `key` ("nav.data"), filling {name} placeholders; unknown keys are shown as given. */
export function t(key, vars) {
  let text = catalogue[key] ?? key;
  if (vars) for (const [k, v] of Object.entries(vars)) text = text.replaceAll(`{${k}}`, String(v));
  return text;
}

// -- session -------------------------------------------------------------------------------
const STORE = "workeros.admin.session";
const listeners = new Set();
let tokens = JSON.parse(localStorage.getItem(STORE) || "null");
let refreshing = null;
let timer = null;

export const session = {
  get signedIn() { return !!tokens; },
  get token() { return tokens?.access_token; },
  set(data) {
    tokens = data ? { access_token: data.access_token, refresh_token: data.refresh_token,
                      until: Date.now() + (data.expires || 900000) } : null;
    if (tokens) localStorage.setItem(STORE, JSON.stringify(tokens)); else localStorage.removeItem(STORE);
    schedule();
    listeners.forEach((fn) => fn(!!tokens));
  },
  onChange(fn) { listeners.add(fn); return () => listeners.delete(fn); },
  async signOut() {
    if (tokens) { try { await api("POST", "/api/auth/logout", { refresh_token: tokens.refresh_token }); } catch { /* ended anyway */ } }
    session.set(null);
  },
};

function schedule() {
  clearTimeout(timer);
  if (tokens) timer = setTimeout(() => refresh().catch(() => {}), Math.max(5000, tokens.until - Date.now() - 60000));
}

async function refresh() {
  // One refresh at a time: presenting a refresh token twice ends the session.
  if (!refreshing) {
    refreshing = (async () => {
      const res = await fetch("/api/auth/refresh", { method: "POST", headers: { "Content-Type": "application/json" },
        body: JSON.stringify({ refresh_token: tokens?.refresh_token }) });
      if (!res.ok) { session.set(null); throw await ApiError.from(res); }
      session.set((await res.json()).data);
    })().finally(() => { refreshing = null; });
  }
  return refreshing;
}
schedule();

export class ApiError extends Error {
  constructor(status, errors) {
    const first = errors?.[0] || {};
    super(first.message || t("error.network"));
    this.status = status;
    this.code = first.extensions?.code;
    this.field = first.extensions?.field;
    this.extensions = first.extensions || {};
    this.errors = errors || [];
  }
  static async from(res) {
    let body = null;
    try { body = await res.json(); } catch { /* not JSON */ }
    return new ApiError(res.status, body?.errors || [{ message: t("error.status", { status: res.status }) }]);
  }
}

/** Call the public API. `body` is sent as JSON (or as is when FormData). Answers the whole
 * envelope ({data, meta}); throws ApiError with the server's message. */
export async function api(method, path, body, { auth = true, retry = true } = {}) {
  const headers = {};
  if (auth && tokens) headers.Authorization = `Bearer ${tokens.access_token}`;
  let payload = body;
  if (body !== undefined && !(body instanceof FormData)) { headers["Content-Type"] = "application/json"; payload = JSON.stringify(body); }
  let res;
  try { res = await fetch(path, { method, headers, body: payload }); }
  catch { throw new ApiError(0, [{ message: t("error.network") }]); }
  if (res.status === 401 && auth && tokens && retry && path !== "/api/auth/refresh") {
    const err = await ApiError.from(res.clone());
    if (err.code === "TOKEN_EXPIRED") { await refresh(); return api(method, path, body, { auth, retry: false }); }
    if (err.code === "INVALID_CREDENTIALS" && !path.startsWith("/api/auth/")) session.set(null);
  }
  if (!res.ok) throw await ApiError.from(res);
  if (res.status === 204) return { data: null };
  return res.json();
}

// -- files: uploads with progress, TUS for large files, images fetched with the token ----
/** Files larger than this go up through TUS (resumable, in chunks); smaller ones as multipart. */
export const TUS_ABOVE = 8 * 1024 * 1024;
const TUS_CHUNK = 4 * 1024 * 1024;

/** One XMLHttpRequest (fetch cannot report upload progress); answers {status, headers, body}. */
function send(method, url, body, headers, onProgress) {
  return new Promise((resolve, reject) => {
    const xhr = new XMLHttpRequest();
    xhr.open(method, url);
    for (const [k, v] of Object.entries(headers)) xhr.setRequestHeader(k, v);
    if (onProgress) xhr.upload.onprogress = (e) => e.lengthComputable && onProgress(e.loaded, e.total);
    xhr.onload = () => {
      let parsed = null;
      try { parsed = xhr.responseText ? JSON.parse(xhr.responseText) : null; } catch { /* not JSON */ }
      resolve({ status: xhr.status, header: (name) => xhr.getResponseHeader(name), body: parsed });
    };
    xhr.onerror = () => reject(new ApiError(0, [{ message: t("error.network") }]));
    xhr.send(body);
  });
}

/** Like send(), with the session's token, refreshed once when it expired; non-2xx throws ApiError. */
async function sendAuthed(method, url, body, headers, onProgress) {
  for (let attempt = 0; ; attempt++) {
    const res = await send(method, url, body, { ...headers, ...(tokens ? { Authorization: `Bearer ${tokens.access_token}` } : {}) }, onProgress);
    if (res.status === 401 && attempt === 0 && tokens && res.body?.errors?.[0]?.extensions?.code === "TOKEN_EXPIRED") { await refresh(); continue; }
    if (res.status >= 200 && res.status < 300) return res;
    throw new ApiError(res.status, res.body?.errors || [{ message: t("error.status", { status: res.status }) }]);
  }
}

const b64 = (text) => btoa(String.fromCharCode(...new TextEncoder().encode(text)));

/** Upload a File: multipart below TUS_ABOVE, TUS 1.0.0 above (resumes from the server's
 * offset after a dropped chunk). `onProgress(sent, total)`; answers the new file row. */
export async function uploadFile(file, { title, folder, onProgress } = {}) {
  if (file.size <= TUS_ABOVE) {
    const form = new FormData();
    if (title) form.append("title", title);
    if (folder) form.append("folder", folder);
    form.append("file", file, file.name);
    const res = await sendAuthed("POST", "/api/files", form, {}, onProgress);
    return res.body.data;
  }
  const meta = [["filename", file.name], ["filetype", file.type || "application/octet-stream"],
    ...(title ? [["title", title]] : []), ...(folder ? [["folder", folder]] : [])].map(([k, v]) => `${k} ${b64(v)}`).join(",");
  const tus = { "Tus-Resumable": "1.0.0" };
  const created = await sendAuthed("POST", "/api/files/tus", null, { ...tus, "Upload-Length": String(file.size), "Upload-Metadata": meta });
  const location = created.header("Location");
  let offset = 0; let fileId = null; let retries = 0;
  while (offset < file.size) {
    const chunk = file.slice(offset, offset + TUS_CHUNK);
    try {
      const res = await sendAuthed("PATCH", location, chunk, { ...tus, "Upload-Offset": String(offset), "Content-Type": "application/offset+octet-stream" },
        (sent) => onProgress && onProgress(offset + sent, file.size));
      offset = Number(res.header("Upload-Offset"));
      fileId = res.header("Workeros-File-Id") || fileId;
      retries = 0;
    } catch (err) {
      if ((err.status && err.status !== 409) || ++retries > 3) throw err;
      // A dropped connection or an offset mismatch: ask the server where the upload stands.
      offset = Number((await sendAuthed("HEAD", location, null, tus)).header("Upload-Offset"));
    }
  }
  onProgress && onProgress(file.size, file.size);
  return (await api("GET", `/api/files/${fileId}`)).data;
}

/** URL of a file's bytes, transformed when `params` are given (width, height, fit, format…). */
export function assetUrl(id, params = {}) {
  return `/api/assets/${encodeURIComponent(id)}${qs(params)}`;
}

/** An image from /api/assets, fetched with the session's token (an <img src> could not send it). */
export function AssetImage({ id, params, alt, ...rest }) {
  const [src, setSrc] = useState(null);
  const [failed, setFailed] = useState(false);
  const url = assetUrl(id, params);
  useEffect(() => {
    let live = true; let made = null;
    setFailed(false);
    (async () => {
      let res = await fetch(url, { headers: tokens ? { Authorization: `Bearer ${tokens.access_token}` } : {} });
      if (res.status === 401 && tokens) { await refresh(); res = await fetch(url, { headers: { Authorization: `Bearer ${tokens?.access_token}` } }); }
      if (!res.ok) throw new Error(String(res.status));
      made = URL.createObjectURL(await res.blob());
      if (live) setSrc(made); else URL.revokeObjectURL(made);
    })().catch(() => live && setFailed(true));
    return () => { live = false; if (made) URL.revokeObjectURL(made); };
  }, [url]);
  if (failed) return html`<span class="thumb-missing" role="img" aria-label=${alt}>—</span>`;
  return src ? html`<img src=${src} alt=${alt} ...${rest}/>` : html`<span class="thumb-loading" role="img" aria-label=${alt}></span>`;
}

/** Query string from an object; objects (filter) become JSON. */
export function qs(params) {
  const out = new URLSearchParams();
  for (const [k, v] of Object.entries(params)) {
    if (v === undefined || v === null || v === "") continue;
    out.set(k, typeof v === "object" ? JSON.stringify(v) : String(v));
  }
  const s = out.toString();
  return s ? `?${s}` : "";
}

// -- realtime: server-sent events over fetch (so the Bearer token goes in a header) ----
/** Subscribe to item events of a collection; `onEvent(type, data)`. Returns a stop function. */
export function subscribe(collection, onEvent) {
  const ctrl = new AbortController();
  (async () => {
    let backoff = 500;
    while (!ctrl.signal.aborted) {
      try {
        const res = await fetch(`/api/realtime/items/${encodeURIComponent(collection)}`, {
          headers: { Authorization: `Bearer ${tokens?.access_token}`, Accept: "text/event-stream" }, signal: ctrl.signal });
        if (!res.ok) { if (res.status === 401 && tokens) await refresh(); else return; }
        else {
          backoff = 500;
          const reader = res.body.pipeThrough(new TextDecoderStream()).getReader();
          let buffer = "";
          for (;;) {
            const { value, done } = await reader.read();
            if (done) break;
            buffer += value;
            let cut;
            // Events end with a blank line; lines end with CRLF or LF.
            while ((cut = buffer.search(/\r?\n\r?\n/)) >= 0) {
              const block = buffer.slice(0, cut);
              buffer = buffer.slice(cut + buffer.slice(cut).match(/^\r?\n\r?\n/)[0].length);
              let type = "message"; const data = [];
              for (const line of block.split(/\r?\n/)) {
                if (line.startsWith("event:")) type = line.slice(6).trim();
                else if (line.startsWith("data:")) data.push(line.slice(5).trimStart());
              }
              if (data.length && type !== "ready") { let parsed = data.join("\n"); try { parsed = JSON.parse(parsed); } catch { /* text */ } onEvent(type, parsed); }
            }
          }
        }
      } catch { if (ctrl.signal.aborted) return; }
      await new Promise((r) => setTimeout(r, backoff)); backoff = Math.min(backoff * 2, 10000);
    }
  })();
  return () => ctrl.abort();
}

// -- small shared state ------------------------------------------------------------------
/** Load something once per mount and on `deps`; answers [value, error, reload]. */
export function useLoad(fn, deps = []) {
  const [state, setState] = useState({ value: undefined, error: null });
  const [tick, setTick] = useState(0);
  useEffect(() => {
    let live = true;
    fn().then((value) => live && setState({ value, error: null }), (error) => live && setState({ value: undefined, error }));
    return () => { live = false; };
  }, [...deps, tick]);
  return [state.value, state.error, () => setTick((n) => n + 1)];
}

let schemaCache = null;
let schemaAsked = 0;
/** Collections with their fields (GET /api/collections), cached until `fresh` (an answer
 * asked for in the last two seconds — as on a first load, where the app asks early — is
 * fresh; the app forgets it on every schema change it makes). */
export async function loadSchema(fresh = false) {
  if (!schemaCache || (fresh && Date.now() - schemaAsked > 2000)) {
    schemaAsked = Date.now();
    schemaCache = api("GET", "/api/collections").then((r) => r.data);
  }
  try { return await schemaCache; } catch (e) { schemaCache = null; throw e; }
}
export function forgetSchema() { schemaCache = null; }

export function navigate(hash) { location.hash = hash; }

// -- components --------------------------------------------------------------------------
/** An API error (or any error) as a readable message. */
export function ErrorBox({ error }) {
  if (!error) return null;
  return html`<div class="error" role="alert">${error.message || String(error)}${error.code ? html` <small>(${error.code})</small>` : ""}</div>`;
}

export function Notice({ children }) {
  return children ? html`<div class="notice" role="status">${children}</div>` : null;
}

let uid = 0;
/** A labelled input with the API's message for this field beside it. */
export function Input({ label, value, onInput, type = "text", error, name, required, ...rest }) {
  const id = useMemo(() => `f${++uid}`, []);
  // The API names the field its message is about (extensions.field).
  const message = error && name && error.field === name ? error.message : null;
  return html`<div class="field">
    <label for=${id}>${label}</label>
    ${type === "textarea"
      ? html`<textarea id=${id} name=${name} value=${value ?? ""} onInput=${(e) => onInput(e.target.value)} aria-invalid=${message ? "true" : "false"} aria-describedby=${message ? `${id}-err` : undefined} ...${rest}></textarea>`
      : type === "checkbox"
        ? html`<input id=${id} name=${name} type="checkbox" checked=${!!value} onChange=${(e) => onInput(e.target.checked)} ...${rest}/>`
        : html`<input id=${id} name=${name} type=${type} value=${value ?? ""} required=${required} onInput=${(e) => onInput(e.target.value)} aria-invalid=${message ? "true" : "false"} aria-describedby=${message ? `${id}-err` : undefined} ...${rest}/>`}
    ${message ? html`<span class="field-error" id=${`${id}-err`}>${message}</span>` : null}
  </div>`;
}

export function Select({ label, value, onChange, options, name, ...rest }) {
  const id = useMemo(() => `f${++uid}`, []);
  return html`<div class="field">
    <label for=${id}>${label}</label>
    <select id=${id} name=${name} value=${value ?? ""} onChange=${(e) => onChange(e.target.value)} ...${rest}>
      ${options.map((o) => (typeof o === "string" ? html`<option value=${o}>${o}</option>` : html`<option value=${o.value}>${o.label}</option>`))}
    </select>
  </div>`;
}

/** JSON in a textarea; `onChange` gets the parsed value (or an Error while it does not parse). */
export function JsonInput({ label, value, onChange, name, rows = 4 }) {
  const [text, setText] = useState(() => (value === undefined || value === null ? "" : JSON.stringify(value, null, 2)));
  const [bad, setBad] = useState(null);
  const id = useMemo(() => `f${++uid}`, []);
  return html`<div class="field">
    <label for=${id}>${label}</label>
    <textarea id=${id} name=${name} rows=${rows} class="mono" value=${text} aria-invalid=${bad ? "true" : "false"}
      onInput=${(e) => { setText(e.target.value); if (!e.target.value.trim()) { setBad(null); onChange(null); return; }
        try { onChange(JSON.parse(e.target.value)); setBad(null); } catch (err) { setBad(t("error.json")); onChange(err); } }}></textarea>
    ${bad ? html`<span class="field-error">${bad}</span>` : null}
  </div>`;
}

export const OPERATORS = ["_eq", "_neq", "_lt", "_lte", "_gt", "_gte", "_in", "_nin", "_null", "_nnull", "_contains",
  "_ncontains", "_icontains", "_starts_with", "_istarts_with", "_ends_with", "_iends_with", "_between", "_nbetween",
  "_empty", "_nempty"];
const NO_VALUE = new Set(["_null", "_nnull", "_empty", "_nempty"]);
const LIST_VALUE = new Set(["_in", "_nin", "_between", "_nbetween"]);

function castValue(raw, op, type) {
  if (NO_VALUE.has(op)) return true;
  const one = (v) => {
    v = v.trim();
    if (["integer", "bigint", "float", "decimal"].includes(type) && v !== "" && !Number.isNaN(Number(v))) return Number(v);
    if (type === "boolean") return v === "true";
    return v;
  };
  return LIST_VALUE.has(op) ? raw.split(",").map(one) : one(raw);
}

/** Rules → the filter DSL (`{"_and": [{field: {op: value}}]}`), as REST and permissions take it. */
export function rulesToFilter(rules, logic = "_and") {
  const parts = rules.filter((r) => r.field && r.op).map((r) => {
    const path = r.field.split(".");
    let node = { [r.op]: castValue(r.value ?? "", r.op, r.type) };
    for (let i = path.length - 1; i >= 0; i--) node = { [path[i]]: node };
    return node;
  });
  if (!parts.length) return null;
  return parts.length === 1 && logic === "_and" ? parts[0] : { [logic]: parts };
}

/** Builds a filter from rows of field / operator / value and shows the DSL JSON it writes. */
export function FilterBuilder({ fields, onChange, label = t("filter.title"), initial }) {
  const [rules, setRules] = useState(initial?.rules || []);
  const [logic, setLogic] = useState(initial?.logic || "_and");
  const filter = rulesToFilter(rules, logic);
  useEffect(() => { onChange(filter); }, [JSON.stringify(filter)]);
  const update = (i, patch) => setRules(rules.map((r, j) => (j === i ? { ...r, ...patch } : r)));
  const typeOf = (name) => fields.find((f) => f.field === name)?.type;
  return html`<fieldset class="filter-builder">
    <legend>${label}</legend>
    ${rules.length > 1 ? html`<${Select} label=${t("filter.match")} value=${logic} onChange=${setLogic}
        options=${[{ value: "_and", label: t("filter.all") }, { value: "_or", label: t("filter.any") }]}/>` : null}
    ${rules.map((r, i) => html`<div class="rule" key=${i}>
      <${Select} label=${t("filter.field")} value=${r.field} onChange=${(v) => update(i, { field: v, type: typeOf(v) })}
        options=${[{ value: "", label: "—" }, ...fields.map((f) => ({ value: f.field, label: f.field }))]}/>
      <${Select} label=${t("filter.operator")} value=${r.op} onChange=${(v) => update(i, { op: v })} options=${OPERATORS}/>
      ${NO_VALUE.has(r.op) ? null : html`<${Input} label=${t("filter.value")} value=${r.value} onInput=${(v) => update(i, { value: v })}/>`}
      <button type="button" class="link" onClick=${() => setRules(rules.filter((_, j) => j !== i))}
        aria-label=${t("filter.remove_rule", { n: i + 1 })}>✕</button>
    </div>`)}
    <button type="button" onClick=${() => setRules([...rules, { field: fields[0]?.field || "", op: "_eq", value: "", type: fields[0]?.type }])}>${t("filter.add_rule")}</button>
    <pre class="dsl" aria-label=${t("filter.dsl")} data-testid="filter-dsl">${filter ? JSON.stringify(filter, null, 2) : "{}"}</pre>
  </fieldset>`;
}

/** A modal dialog (native <dialog>: focus trap and Escape come with it). */
export function Dialog({ title, onClose, children }) {
  const ref = useRef();
  useEffect(() => { ref.current.showModal(); }, []);
  return html`<dialog ref=${ref} aria-label=${title} onClose=${onClose} onCancel=${onClose}>
    <header><h2>${title}</h2><button type="button" class="link" onClick=${onClose} aria-label=${t("common.close")}>✕</button></header>
    ${children}
  </dialog>`;
}

export function fmt(value) {
  if (value === null || value === undefined) return "—";
  if (typeof value === "object") return JSON.stringify(value);
  return String(value);
}

/** Mount a Preact component as a page: `export default page(MyPage)`. */
export function page(Component) {
  return (el, ctx) => { render(h(Component, ctx), el); return () => render(null, el); };
}
