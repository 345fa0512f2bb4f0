// The Ask AI page of the admin app (contributed by workeros-ai through
// workeros_register_admin_pages): a question in words becomes a query plan, checked by the
// server against the schema and the caller's permissions; the plan is shown, and only when
// the user runs it are rows read — through the items API, as the user, exactly as shown.
import { html, page, t, api, qs, useState, useLoad, Input, Select, ErrorBox, Notice, loadSchema, fmt } from "workeros-admin";

/** The plan as an items query string (the same query a REST client would send). */
export function planQuery(plan) {
  const list = (v) => (Array.isArray(v) && v.length ? v.join(",") : undefined);
  return qs({
    filter: plan.filter || undefined,
    sort: list(plan.sort),
    limit: plan.limit,
    fields: plan.aggregate ? undefined : list(plan.fields),
    groupBy: list(plan.groupBy),
    // aggregate[fn]=fields, as REST takes it
    ...Object.fromEntries(Object.entries(plan.aggregate || {}).map(([fn, names]) => [`aggregate[${fn}]`, names.join(",")])),
  });
}

function Rows({ rows }) {
  const columns = [...new Set(rows.flatMap((r) => Object.keys(r)))];
  return html`<div class="table-wrap"><table class="grid" data-testid="ai-rows">
    <caption>${t("ai.rows", { n: rows.length })}</caption>
    <thead><tr>${columns.map((c) => html`<th scope="col">${c}</th>`)}</tr></thead>
    <tbody>${rows.map((r) => html`<tr>${columns.map((c) => html`<td>${fmt(r[c])}</td>`)}</tr>`)}</tbody>
  </table></div>`;
}

function Ask() {
  const [collections] = useLoad(() => loadSchema().catch(() => []));
  const [prompt, setPrompt] = useState("");
  const [collection, setCollection] = useState("");
  const [answer, setAnswer] = useState(null);
  const [rows, setRows] = useState(null);
  const [error, setError] = useState(null);
  const [note, setNote] = useState(null);
  const [busy, setBusy] = useState(false);
  const ask = async (e) => {
    e.preventDefault(); setError(null); setNote(null); setAnswer(null); setRows(null); setBusy(true);
    try { setAnswer((await api("POST", "/api/ai/query", { prompt, collection: collection || undefined, run: false })).data); }
    catch (err) { setError(err); }
    setBusy(false);
  };
  const run = async () => {
    setError(null); setBusy(true);
    try { setRows((await api("GET", `/api/items/${encodeURIComponent(answer.plan.collection)}${planQuery(answer.plan)}`)).data); }
    catch (err) { setError(err); }
    setBusy(false);
  };
  const reject = () => { setAnswer(null); setRows(null); setNote(t("ai.rejected")); };
  const plan = answer?.plan;
  return html`<section aria-labelledby="ai-title">
    <h1 id="ai-title">${t("ai.title")}</h1>
    <p class="hint">${t("ai.intro")}</p>
    <form onSubmit=${ask} aria-label=${t("ai.ask")}>
      <${Input} label=${t("ai.prompt")} name="prompt" type="textarea" value=${prompt} onInput=${setPrompt} error=${error} required rows="3"/>
      <${Select} label=${t("ai.collection")} name="collection" value=${collection} onChange=${setCollection}
        options=${[{ value: "", label: t("ai.any_collection") }, ...(collections || []).map((c) => c.collection)]}/>
      <button type="submit" class="primary" disabled=${busy}>${t("ai.show_plan")}</button>
    </form>
    <${ErrorBox} error=${error}/><${Notice}>${note}<//>
    ${plan ? html`<section aria-labelledby="plan-title" class="plan" data-testid="ai-plan">
      <h2 id="plan-title">${t("ai.plan")}</h2>
      ${answer.explanation ? html`<p class="explanation">${answer.explanation}</p>` : null}
      <dl class="facts">
        <dt>${t("ai.plan_collection")}</dt><dd data-testid="plan-collection">${plan.collection}</dd>
        <dt>${t("ai.plan_filter")}</dt><dd><pre class="dsl" data-testid="plan-filter">${JSON.stringify(plan.filter ?? {}, null, 2)}</pre></dd>
        <dt>${t("ai.plan_sort")}</dt><dd>${(plan.sort || []).join(", ") || "—"}</dd>
        <dt>${t("ai.plan_limit")}</dt><dd>${fmt(plan.limit)}</dd>
        ${plan.aggregate ? html`<dt>${t("ai.plan_aggregate")}</dt><dd class="mono">${JSON.stringify(plan.aggregate)}${plan.groupBy ? ` · ${plan.groupBy.join(", ")}` : ""}</dd>`
          : html`<dt>${t("ai.plan_fields")}</dt><dd>${(plan.fields || []).join(", ")}</dd>`}
        <dt>${t("ai.model")}</dt><dd>${fmt(answer.model)} · ${t("ai.tokens", { input: answer.usage?.input_tokens ?? "?", output: answer.usage?.output_tokens ?? "?" })}</dd>
      </dl>
      <p class="hint">${t("ai.read_only")}</p>
      <div class="actions">
        <button type="button" class="primary" onClick=${run} disabled=${busy}>${t("ai.run")}</button>
        <button type="button" onClick=${reject}>${t("ai.reject")}</button>
      </div>
    </section>` : null}
    ${rows ? html`<${Rows} rows=${rows}/>` : null}
  </section>`;
}

export default page(Ask);
