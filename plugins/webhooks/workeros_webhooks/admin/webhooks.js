// The webhooks page of the admin app (contributed by workeros-webhooks through
// workeros_register_admin_pages): webhook definitions and their deliveries log.
import { html, page, t, api, qs, useState, useLoad, Input, ErrorBox, Notice, fmt } from "workeros-admin";

const EVENTS = ["items.create", "items.update", "items.delete", "auth.login", "auth.signup", "auth.logout", "auth.password_reset"];

function Deliveries({ hook }) {
  const [status, setStatus] = useState("");
  const [rows, error, reload] = useLoad(() => api("GET", `/api/webhooks/${hook.id}/deliveries${qs({ status, limit: 100 })}`).then((r) => r.data), [hook.id, status]);
  return html`<section aria-labelledby="dl-title">
    <h2 id="dl-title">${t("webhooks.deliveries", { name: hook.name })}</h2>
    <div class="toolbar">
      <label>${t("webhooks.status")} <select value=${status} onChange=${(e) => setStatus(e.target.value)}>
        ${["", "pending", "delivered", "failed"].map((s) => html`<option value=${s}>${s || "—"}</option>`)}</select></label>
      <button type="button" onClick=${reload}>↻</button>
    </div>
    <${ErrorBox} error=${error}/>
    <table class="grid"><caption class="sr">${t("webhooks.deliveries", { name: hook.name })}</caption>
      <thead><tr><th scope="col">${t("webhooks.time")}</th><th scope="col">${t("webhooks.event")}</th><th scope="col">${t("webhooks.status")}</th>
        <th scope="col">${t("webhooks.attempts")}</th><th scope="col">${t("webhooks.response")}</th><th scope="col">${t("webhooks.error")}</th></tr></thead>
      <tbody>${(rows || []).map((d) => html`<tr data-delivery=${d.id}><td>${d.created_at}</td><td>${d.event} ${d.collection ? `· ${d.collection}` : ""}</td>
        <td>${d.status}</td><td>${d.attempt_count}</td><td>${fmt(d.response_status)}</td><td>${fmt(d.error)}</td></tr>`)}</tbody>
    </table>
    ${rows && !rows.length ? html`<${Notice}>${t("webhooks.no_deliveries")}<//>` : null}
  </section>`;
}

function NewWebhook({ onDone }) {
  const [form, setForm] = useState({ name: "", url: "", events: ["items.create"], collections: "" });
  const [error, setError] = useState(null);
  const [secret, setSecret] = useState(null);
  const submit = async (e) => {
    e.preventDefault(); setError(null);
    const collections = form.collections.split(",").map((s) => s.trim()).filter(Boolean);
    try {
      const r = await api("POST", "/api/webhooks", { name: form.name, url: form.url, events: form.events, collections: collections.length ? collections : null });
      setSecret(r.data.secret); onDone(r.data);
    } catch (err) { setError(err); }
  };
  return html`<form onSubmit=${submit} aria-label=${t("webhooks.new")}>
    <h2>${t("webhooks.new")}</h2>
    <${Input} label=${t("webhooks.name")} name="name" value=${form.name} onInput=${(v) => setForm({ ...form, name: v })} error=${error} required/>
    <${Input} label=${t("webhooks.url")} name="url" type="url" value=${form.url} onInput=${(v) => setForm({ ...form, url: v })} error=${error} required/>
    <fieldset><legend>${t("webhooks.events")}</legend>${EVENTS.map((ev) => html`<label class="check"><input type="checkbox" checked=${form.events.includes(ev)}
      onChange=${(e) => setForm({ ...form, events: e.target.checked ? [...form.events, ev] : form.events.filter((x) => x !== ev) })}/> ${ev}</label>`)}</fieldset>
    <${Input} label=${t("webhooks.collections")} name="collections" value=${form.collections} onInput=${(v) => setForm({ ...form, collections: v })} error=${error}/>
    <${ErrorBox} error=${error}/>
    ${secret ? html`<div class="notice" role="status">${t("webhooks.secret_once")} <code class="key">${secret}</code></div>` : null}
    <button type="submit" class="primary">${t("webhooks.create")}</button>
  </form>`;
}

function Webhooks({ params }) {
  const [hooks, error, reload] = useLoad(() => api("GET", "/api/webhooks").then((r) => r.data));
  const hook = (hooks || []).find((h) => h.id === params[0]);
  return html`<div>
    <h1>${t("webhooks.title")}</h1>
    <${ErrorBox} error=${error}/>
    <div class="split">
      <aside>
        <ul class="list">${(hooks || []).map((h) => html`<li><a href=${`#/webhooks/${h.id}`} aria-current=${h === hook ? "page" : undefined}>
          ${h.name}${h.active ? "" : " (off)"}</a></li>`)}</ul>
        ${hooks && !hooks.length ? html`<${Notice}>${t("webhooks.none")}<//>` : null}
        <${NewWebhook} onDone=${reload}/>
      </aside>
      <div class="content">${hook ? html`<${Deliveries} key=${hook.id} hook=${hook}/>` : html`<p>${t("webhooks.pick")}</p>`}</div>
    </div>
  </div>`;
}

export default page(Webhooks);
