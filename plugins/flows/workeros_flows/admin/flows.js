// The flows page of the admin app (contributed by workeros-flows through
// workeros_register_admin_pages): a visual graph of a flow's operations with their
// resolve/reject links, an editor for them, manual runs, and the run history with
// each step's output.
import { html, page, t, api, qs, useState, useLoad, Input, Select, JsonInput, ErrorBox, Notice, navigate, fmt } from "workeros-admin";

const OPERATION_TYPES = ["condition", "item-create", "item-read", "item-update", "item-delete", "request", "mail", "log",
  "transform", "sleep", "trigger", "script", "function"];
const TRIGGERS = ["manual", "webhook", "event", "schedule"];

/** Columns by distance from the start, so links read left to right. */
function layout(ops, start) {
  const depth = new Map();
  const queue = start && ops.some((o) => o.key === start) ? [[start, 0]] : [];
  while (queue.length) {
    const [key, d] = queue.shift();
    if (depth.has(key)) continue;
    depth.set(key, d);
    const op = ops.find((o) => o.key === key);
    for (const next of [op?.resolve, op?.reject]) if (next && !depth.has(next)) queue.push([next, d + 1]);
  }
  let spare = Math.max(0, ...depth.values()) + 1;
  for (const op of ops) if (!depth.has(op.key)) depth.set(op.key, spare++);
  const rows = new Map();
  const pos = {};
  for (const op of ops) {
    const d = depth.get(op.key); const r = rows.get(d) || 0; rows.set(d, r + 1);
    pos[op.key] = { x: 20 + d * 190, y: 20 + r * 80 };
  }
  return pos;
}

function Graph({ ops, start }) {
  const pos = layout(ops, start);
  const W = 150; const H = 46;
  const width = Math.max(400, ...Object.values(pos).map((p) => p.x + W + 30));
  const height = Math.max(100, ...Object.values(pos).map((p) => p.y + H + 30));
  const edges = [];
  for (const op of ops) {
    for (const kind of ["resolve", "reject"]) {
      const to = op[kind] && pos[op[kind]];
      if (!to) continue;
      const from = pos[op.key];
      edges.push(html`<path class=${kind} fill="none" stroke-width="2" marker-end=${`url(#arrow-${kind})`}
        d=${`M${from.x + W},${from.y + H / 2 + (kind === "reject" ? 8 : -8)} C${from.x + W + 30},${from.y + H / 2} ${to.x - 30},${to.y + H / 2} ${to.x - 4},${to.y + H / 2}`}>
        <title>${op.key} → ${op[kind]} (${kind})</title></path>`);
    }
  }
  return html`<figure class="graph">
    <svg width=${width} height=${height} role="img" aria-label=${t("flows.graph")}>
      <defs>${["resolve", "reject"].map((k) => html`<marker id=${`arrow-${k}`} viewBox="0 0 10 10" refX="9" refY="5" markerWidth="7" markerHeight="7" orient="auto">
        <path d="M0,0 L10,5 L0,10 z" fill=${k === "resolve" ? "#176b2c" : "#a4161a"}/></marker>`)}</defs>
      ${edges}
      ${ops.map((op) => html`<g class=${`node${op.key === start ? " start" : ""}`} data-node=${op.key} transform=${`translate(${pos[op.key].x},${pos[op.key].y})`}>
        <rect width=${W} height=${H} rx="6"/>
        <text x="10" y="19" font-weight="600">${op.key}${op.key === start ? " ▶" : ""}</text>
        <text x="10" y="36">${op.type}</text></g>`)}
    </svg>
    <figcaption class="hint">${t("flows.resolve")}: —— · ${t("flows.reject")}: - - -</figcaption>
  </figure>`;
}

function OperationEditor({ op, keys, onChange, onRemove, index }) {
  const links = [{ value: "", label: t("flows.end") }, ...keys.filter((k) => k !== op.key).map((k) => ({ value: k, label: k }))];
  return html`<fieldset class="op" data-op=${op.key}>
    <legend>${t("flows.operation")} ${index + 1}</legend>
    <div class="inline-form">
      <${Input} label=${t("flows.key")} name=${`key-${index}`} value=${op.key} onInput=${(v) => onChange({ ...op, key: v })}/>
      <${Select} label=${t("flows.type")} name=${`type-${index}`} value=${op.type} onChange=${(v) => onChange({ ...op, type: v })} options=${OPERATION_TYPES}/>
      <${Select} label=${t("flows.resolve")} name=${`resolve-${index}`} value=${op.resolve || ""} onChange=${(v) => onChange({ ...op, resolve: v || null })} options=${links}/>
      <${Select} label=${t("flows.reject")} name=${`reject-${index}`} value=${op.reject || ""} onChange=${(v) => onChange({ ...op, reject: v || null })} options=${links}/>
      <button type="button" class="link danger" onClick=${onRemove}>${t("flows.remove_operation", { key: op.key })}</button>
    </div>
    <${JsonInput} label=${t("flows.options")} name=${`options-${index}`} value=${op.options} onChange=${(v) => onChange({ ...op, options: v })} rows="3"/>
  </fieldset>`;
}

function Runs({ flow, version }) {
  const [runs, error, reload] = useLoad(() => api("GET", `/api/flows/${flow.id}/runs${qs({ limit: 20 })}`).then((r) => r.data), [flow.id, version]);
  return html`<section aria-labelledby="runs-title">
    <h2 id="runs-title">${t("flows.runs")} <button type="button" class="link" onClick=${reload} aria-label=${t("flows.runs")}>↻</button></h2>
    <${ErrorBox} error=${error}/>
    ${runs && !runs.length ? html`<${Notice}>${t("flows.no_runs")}<//>` : null}
    ${(runs || []).map((run) => html`<details class="run" data-run=${run.id} open=${runs[0] === run}>
      <summary>${t("flows.run_n", { id: run.id, status: run.status, at: run.started_at })}${run.error ? ` — ${run.error}` : ""}</summary>
      <table class="grid"><thead><tr><th scope="col">${t("flows.step")}</th><th scope="col">${t("flows.type")}</th><th scope="col">${t("flows.status")}</th>
        <th scope="col">${t("flows.output")}</th><th scope="col">${t("flows.duration")}</th></tr></thead>
        <tbody>${(run.steps || []).map((s) => html`<tr data-step=${s.key}><td>${s.key}</td><td>${s.type}</td><td class=${`step-${s.status}`}>${s.status}</td>
          <td><code>${s.error ? s.error : fmt(s.output)}</code></td><td>${s.duration_ms}</td></tr>`)}</tbody></table>
    </details>`)}
  </section>`;
}

function FlowEditor({ flow, onSaved }) {
  const [draft, setDraft] = useState(() => ({ ...flow, operations: flow.operations.map((o) => ({ ...o })) }));
  const [error, setError] = useState(null);
  const [note, setNote] = useState(null);
  const [payload, setPayload] = useState({});
  const [result, setResult] = useState(undefined);
  const [version, setVersion] = useState(0);
  const ops = draft.operations;
  const keys = ops.map((o) => o.key);
  const setOp = (i, op) => {
    const old = ops[i].key;
    const next = ops.map((o, j) => (j === i ? op : { ...o, resolve: o.resolve === old ? op.key : o.resolve, reject: o.reject === old ? op.key : o.reject }));
    setDraft({ ...draft, operations: next, start: draft.start === old ? op.key : draft.start });
  };
  const add = () => {
    let n = ops.length + 1; while (keys.includes(`step_${n}`)) n++;
    const key = `step_${n}`;
    const last = ops[ops.length - 1];
    const next = ops.map((o) => (o === last && !o.resolve ? { ...o, resolve: key } : o));
    setDraft({ ...draft, operations: [...next, { key, type: "log", options: { message: "{{ $last }}" }, resolve: null, reject: null }], start: draft.start || key });
  };
  const save = async (e) => {
    e?.preventDefault(); setError(null); setNote(null);
    for (const o of ops) if (o.options instanceof Error) { setError({ message: t("error.json") }); return false; }
    if (draft.options instanceof Error) { setError({ message: t("error.json") }); return false; }
    try {
      const body = { name: draft.name, status: draft.status, trigger: draft.trigger, options: draft.options || {}, start: draft.start || null,
        operations: ops.map((o) => ({ key: o.key, type: o.type, options: o.options || {}, resolve: o.resolve || null, reject: o.reject || null })) };
      const r = await api("PATCH", `/api/flows/${flow.id}`, body);
      setNote(t("flows.saved")); onSaved(r.data); return true;
    } catch (err) { setError(err); return false; }
  };
  const run = async () => {
    setResult(undefined); setError(null);
    if (!(await save())) return;
    try { const r = await api("POST", `/api/flows/trigger/${flow.id}`, payload instanceof Error ? {} : payload || {}); setResult(r.data); }
    catch (err) { setError(err); }
    setVersion((v) => v + 1);
    // The run's record may land just after its answer: look again shortly.
    setTimeout(() => setVersion((v) => v + 1), 600);
  };
  const drop = async () => {
    if (!confirm(t("flows.confirm_delete", { name: flow.name }))) return;
    try { await api("DELETE", `/api/flows/${flow.id}`); onSaved(null); navigate("#/flows"); } catch (err) { setError(err); }
  };
  return html`<section aria-labelledby="flow-title">
    <h2 id="flow-title">${draft.name}</h2>
    <${Graph} ops=${ops} start=${draft.start}/>
    <form onSubmit=${save} aria-label=${t("flows.title")}>
      <div class="inline-form">
        <${Select} label=${t("flows.trigger")} name="trigger" value=${draft.trigger} onChange=${(v) => setDraft({ ...draft, trigger: v })} options=${TRIGGERS}/>
        <${Select} label=${t("flows.status")} name="status" value=${draft.status} onChange=${(v) => setDraft({ ...draft, status: v })} options=${["active", "inactive"]}/>
        <${Select} label=${t("flows.start")} name="start" value=${draft.start || ""} onChange=${(v) => setDraft({ ...draft, start: v || null })}
          options=${[{ value: "", label: "—" }, ...keys.map((k) => ({ value: k, label: k }))]}/>
      </div>
      <${JsonInput} label=${t("flows.trigger_options")} name="trigger-options" value=${draft.options} onChange=${(v) => setDraft({ ...draft, options: v })} rows="2"/>
      ${ops.map((op, i) => html`<${OperationEditor} key=${i} index=${i} op=${op} keys=${keys} onChange=${(o) => setOp(i, o)}
        onRemove=${() => setDraft({ ...draft, operations: ops.filter((_, j) => j !== i).map((o) => ({ ...o, resolve: o.resolve === op.key ? null : o.resolve, reject: o.reject === op.key ? null : o.reject })), start: draft.start === op.key ? null : draft.start })}/>`)}
      <div class="actions">
        <button type="button" onClick=${add}>${t("flows.add_operation")}</button>
        <button type="submit" class="primary">${t("flows.save")}</button>
        <button type="button" class="danger" onClick=${drop}>${t("flows.delete")}</button>
      </div>
    </form>
    <${ErrorBox} error=${error}/><${Notice}>${note}<//>
    ${["manual", "webhook"].includes(draft.trigger) ? html`<div class="run-now">
      <${JsonInput} label=${t("flows.payload")} name="payload" value=${payload} onChange=${setPayload} rows="2"/>
      <button type="button" class="primary" onClick=${run}>${t("flows.run")}</button>
      ${result !== undefined ? html`<p>${t("flows.result")}: <code data-testid="flow-result">${fmt(result)}</code></p>` : null}
    </div>` : null}
    <${Runs} flow=${flow} version=${version}/>
  </section>`;
}

function NewFlow({ onDone }) {
  const [name, setName] = useState("");
  const [trigger, setTrigger] = useState("manual");
  const [error, setError] = useState(null);
  const submit = async (e) => {
    e.preventDefault(); setError(null);
    try { const r = await api("POST", "/api/flows", { name, trigger, status: "active", options: {}, operations: [], start: null }); onDone(r.data); }
    catch (err) { setError(err); }
  };
  return html`<form onSubmit=${submit} class="inline-form" aria-label=${t("flows.new")}>
    <${Input} label=${t("flows.name")} name="name" value=${name} onInput=${setName} error=${error} required/>
    <${Select} label=${t("flows.trigger")} value=${trigger} onChange=${setTrigger} options=${TRIGGERS}/>
    <button type="submit" class="primary">${t("flows.create")}</button>
    <${ErrorBox} error=${error}/>
  </form>`;
}

function Flows({ params }) {
  const [flows, error, reload] = useLoad(() => api("GET", "/api/flows").then((r) => r.data));
  const flow = (flows || []).find((f) => String(f.id) === params[0]);
  return html`<div>
    <h1>${t("flows.title")}</h1>
    <${ErrorBox} error=${error}/>
    <div class="split">
      <aside>
        <ul class="list">${(flows || []).map((f) => html`<li><a href=${`#/flows/${f.id}`} aria-current=${f === flow ? "page" : undefined}>${f.name} <small>(${f.trigger})</small></a></li>`)}</ul>
        ${flows && !flows.length ? html`<${Notice}>${t("flows.none")}<//>` : null}
        <${NewFlow} onDone=${(f) => { reload(); navigate(`#/flows/${f.id}`); }}/>
      </aside>
      <div class="content">${flow ? html`<${FlowEditor} key=${flow.id} flow=${flow} onSaved=${() => reload()}/>` : html`<p>${t("flows.pick")}</p>`}</div>
    </div>
  </div>`;
}

export default page(Flows);
