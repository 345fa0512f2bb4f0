// The functions page of the admin app (contributed by workeros-functions through
// workeros_register_admin_pages): the code editor, a run with a sample request, and the
// invocation logs with each call's ctx.log lines.
import {
  html, page, t, api, qs, useState, useEffect, useLoad, Input, Select, JsonInput, ErrorBox, Notice, navigate, fmt,
} from "workeros-admin";

const STARTER = `export default async function (req, ctx) {
  ctx.log("called with", req.method);
  return { hello: req.body?.name ?? "world" };
}
`;
const METHODS = ["POST", "GET", "PUT", "PATCH", "DELETE"];

/** A code textarea where Tab indents instead of leaving the field (Escape, then Tab, leaves it). */
function CodeEditor({ value, onInput, error }) {
  const [escaped, setEscaped] = useState(false);
  const onKeyDown = (e) => {
    if (e.key === "Escape") { setEscaped(true); return; }
    if (e.key !== "Tab" || escaped || e.shiftKey) { setEscaped(false); return; }
    e.preventDefault();
    const el = e.target; const { selectionStart: a, selectionEnd: b } = el;
    el.value = `${el.value.slice(0, a)}  ${el.value.slice(b)}`;
    el.selectionStart = el.selectionEnd = a + 2;
    onInput(el.value);
  };
  const where = error?.extensions?.line ? t("functions.at_line", { line: error.extensions.line, column: error.extensions.column ?? "?" }) : null;
  return html`<div class="field code">
    <label for="fn-code">${t("functions.code")}</label>
    <textarea id="fn-code" name="code" class="mono" rows="16" spellcheck="false" value=${value}
      aria-describedby="fn-code-hint" aria-invalid=${where ? "true" : "false"}
      onInput=${(e) => onInput(e.target.value)} onKeyDown=${onKeyDown}></textarea>
    <span class="hint" id="fn-code-hint">${t("functions.code_hint")}</span>
    ${where ? html`<span class="field-error">${where}: ${error.message}</span>` : null}
  </div>`;
}

function RunPanel({ fn, onRan }) {
  const [method, setMethod] = useState("POST");
  const [query, setQuery] = useState("");
  const [body, setBody] = useState({ name: "Ada" });
  const [result, setResult] = useState(undefined);
  const [error, setError] = useState(null);
  const [busy, setBusy] = useState(false);
  const run = async (e) => {
    e.preventDefault(); setError(null); setResult(undefined);
    if (body instanceof Error) { setError({ message: t("error.json") }); return; }
    setBusy(true);
    const params = Object.fromEntries(new URLSearchParams(query.replace(/^\?/, "")));
    try {
      const r = await api(method, `/api/functions/${encodeURIComponent(fn.name)}/run${qs(params)}`,
        ["GET", "DELETE"].includes(method) || body === null ? undefined : body);
      setResult(r.data);
    } catch (err) { setError(err); }
    setBusy(false); onRan();
  };
  return html`<form onSubmit=${run} aria-label=${t("functions.run")} class="run-panel">
    <h2>${t("functions.run")}</h2>
    <div class="inline-form">
      <${Select} label=${t("functions.method")} name="method" value=${method} onChange=${setMethod} options=${METHODS}/>
      <${Input} label=${t("functions.query")} name="query" value=${query} onInput=${setQuery} placeholder="a=1&b=2"/>
    </div>
    ${["GET", "DELETE"].includes(method) ? null : html`<${JsonInput} label=${t("functions.body")} name="body" value=${body} onChange=${setBody} rows="4"/>`}
    <button type="submit" class="primary" disabled=${busy}>${t("functions.run_now")}</button>
    <${ErrorBox} error=${error}/>
    ${result !== undefined ? html`<figure><figcaption>${t("functions.result")}</figcaption>
      <pre class="dsl" data-testid="function-result">${JSON.stringify(result, null, 2)}</pre></figure>` : null}
  </form>`;
}

function Logs({ fn, version }) {
  const [status, setStatus] = useState("");
  const [rows, error, reload] = useLoad(() => api("GET", `/api/functions/${encodeURIComponent(fn.name)}/logs${qs({ status, limit: 50 })}`).then((r) => r.data),
    [fn.name, status, version]);
  // An invocation's log row is written as the call ends, beside its answer: look again shortly after a run.
  useEffect(() => { if (!version) return undefined; const again = setTimeout(reload, 800); return () => clearTimeout(again); }, [version]);
  return html`<section aria-labelledby="fn-logs">
    <h2 id="fn-logs">${t("functions.logs")}</h2>
    <div class="toolbar">
      <${Select} label=${t("functions.status")} value=${status} onChange=${setStatus} options=${[{ value: "", label: "—" }, "ok", "error", "timeout"]}/>
      <button type="button" onClick=${reload}>${t("functions.refresh")}</button>
    </div>
    <${ErrorBox} error=${error}/>
    <table class="grid"><caption class="sr">${t("functions.logs")}</caption>
      <thead><tr><th scope="col">${t("functions.started")}</th><th scope="col">${t("functions.status")}</th><th scope="col">${t("functions.version")}</th>
        <th scope="col">${t("functions.duration")}</th><th scope="col">${t("functions.error")}</th><th scope="col">${t("functions.lines")}</th></tr></thead>
      <tbody>${(rows || []).map((l) => html`<tr data-log=${l.id} data-status=${l.status}>
        <td>${fmt(l.started_at)}</td><td>${l.status}</td><td>${fmt(l.version)}</td><td>${typeof l.duration_ms === "number" ? l.duration_ms.toFixed(1) : fmt(l.duration_ms)}</td><td>${fmt(l.error)}</td>
        <td><pre class="log-lines">${(l.lines || []).map((line) => (typeof line === "string" ? line : JSON.stringify(line))).join("\n")}</pre></td></tr>`)}</tbody>
    </table>
    ${rows && !rows.length ? html`<${Notice}>${t("functions.no_logs")}<//>` : null}
  </section>`;
}

function FunctionView({ name, onChanged }) {
  const [fn, loadError, reload] = useLoad(() => api("GET", `/api/functions/${encodeURIComponent(name)}`).then((r) => r.data), [name]);
  const [draft, setDraft] = useState(null);
  const [error, setError] = useState(null);
  const [note, setNote] = useState(null);
  const [ran, setRan] = useState(0);
  useEffect(() => { if (fn) setDraft({ code: fn.code, description: fn.description || "", timeout_ms: fn.timeout_ms, memory_mb: fn.memory_mb, public: !!fn.public }); }, [fn]);
  if (loadError) return html`<${ErrorBox} error=${loadError}/>`;
  if (!fn || !draft) return html`<p role="status">${t("common.loading")}</p>`;
  const save = async (e) => {
    e.preventDefault(); setError(null); setNote(null);
    try {
      await api("PATCH", `/api/functions/${encodeURIComponent(name)}`, { ...draft, timeout_ms: Number(draft.timeout_ms), memory_mb: Number(draft.memory_mb) });
      setNote(t("functions.saved")); reload(); onChanged();
    } catch (err) { setError(err); }
  };
  const remove = async () => {
    if (!confirm(t("functions.confirm_delete", { name }))) return;
    try { await api("DELETE", `/api/functions/${encodeURIComponent(name)}`); onChanged(); navigate("#/functions"); } catch (err) { setError(err); }
  };
  return html`<section aria-labelledby="fn-title">
    <h2 id="fn-title">${fn.name} <small>${t("functions.version_n", { n: fn.version ?? "?" })}</small></h2>
    <form onSubmit=${save} aria-label=${t("functions.editor")}>
      <${CodeEditor} value=${draft.code} onInput=${(code) => setDraft({ ...draft, code })} error=${error}/>
      <div class="inline-form">
        <${Input} label=${t("functions.description")} name="description" value=${draft.description} onInput=${(v) => setDraft({ ...draft, description: v })} error=${error}/>
        <${Input} label=${t("functions.timeout")} name="timeout_ms" type="number" value=${draft.timeout_ms} onInput=${(v) => setDraft({ ...draft, timeout_ms: v })} error=${error}/>
        <${Input} label=${t("functions.memory")} name="memory_mb" type="number" value=${draft.memory_mb} onInput=${(v) => setDraft({ ...draft, memory_mb: v })} error=${error}/>
        <${Input} label=${t("functions.public")} name="public" type="checkbox" value=${draft.public} onInput=${(v) => setDraft({ ...draft, public: v })}/>
      </div>
      <${ErrorBox} error=${error}/><${Notice}>${note}<//>
      <div class="actions">
        <button type="submit" class="primary">${t("common.save")}</button>
        <button type="button" class="danger" onClick=${remove}>${t("functions.delete")}</button>
      </div>
    </form>
    <${RunPanel} fn=${fn} onRan=${() => setRan((n) => n + 1)}/>
    <${Logs} fn=${fn} version=${ran}/>
  </section>`;
}

function NewFunction({ onDone }) {
  const [name, setName] = useState("");
  const [error, setError] = useState(null);
  const submit = async (e) => {
    e.preventDefault(); setError(null);
    try { await api("POST", "/api/functions", { name, code: STARTER }); onDone(name); } catch (err) { setError(err); }
  };
  return html`<form onSubmit=${submit} class="inline-form" aria-label=${t("functions.new")}>
    <${Input} label=${t("functions.name")} name="name" value=${name} onInput=${setName} error=${error} required/>
    <button type="submit" class="primary">${t("functions.create")}</button>
    <${ErrorBox} error=${error}/>
  </form>`;
}

function Functions({ params }) {
  const [list, error, reload] = useLoad(() => api("GET", "/api/functions").then((r) => r.data));
  const name = params[0];
  return html`<div>
    <h1>${t("functions.title")}</h1>
    <${ErrorBox} error=${error}/>
    <div class="split">
      <aside aria-label=${t("functions.title")}>
        <ul class="list">${(list || []).map((f) => html`<li><a href=${`#/functions/${encodeURIComponent(f.name)}`} aria-current=${f.name === name ? "page" : undefined}>${f.name}</a></li>`)}</ul>
        ${list && !list.length ? html`<${Notice}>${t("functions.none")}<//>` : null}
        <${NewFunction} onDone=${(n) => { reload(); navigate(`#/functions/${encodeURIComponent(n)}`); }}/>
      </aside>
      <div class="content">${name ? html`<${FunctionView} key=${name} name=${name} onChanged=${reload}/>` : html`<p>${t("functions.pick")}</p>`}</div>
    </div>
  </div>`;
}

export default page(Functions);
