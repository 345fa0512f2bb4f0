// Activity log with filters (action, collection, user, time) and paging.
import { html, page, t, api, qs, useState, useLoad, Input, ErrorBox, Notice, fmt } from "workeros-admin";

function Activity() {
  const [form, setForm] = useState({ action: "", collection: "", user: "", since: "" });
  const [applied, setApplied] = useState(form);
  const [pageNo, setPageNo] = useState(1);
  const filter = () => {
    const parts = [];
    if (applied.action) parts.push({ action: { _starts_with: applied.action } });
    if (applied.collection) parts.push({ collection: { _eq: applied.collection } });
    if (applied.user) parts.push({ user: { _eq: applied.user } });
    if (applied.since) parts.push({ timestamp: { _gte: new Date(applied.since).toISOString() } });
    return parts.length ? { _and: parts } : null;
  };
  const [rows, error] = useLoad(() => api("GET", `/api/activity${qs({ filter: filter(), sort: "-timestamp", limit: 50, page: pageNo })}`).then((r) => r.data),
    [JSON.stringify(applied), pageNo]);
  const set = (k) => (v) => setForm({ ...form, [k]: v });
  return html`<section>
    <h1>${t("nav.activity")}</h1>
    <form class="inline-form" role="search" aria-label=${t("activity.filters")} onSubmit=${(e) => { e.preventDefault(); setApplied(form); setPageNo(1); }}>
      <${Input} label=${t("activity.action")} name="action" value=${form.action} onInput=${set("action")} placeholder="item."/>
      <${Input} label=${t("activity.collection")} name="collection" value=${form.collection} onInput=${set("collection")}/>
      <${Input} label=${t("activity.user")} name="user" value=${form.user} onInput=${set("user")}/>
      <${Input} label=${t("activity.since")} name="since" type="datetime-local" value=${form.since} onInput=${set("since")}/>
      <button type="submit">${t("activity.apply")}</button>
    </form>
    <${ErrorBox} error=${error}/>
    <table class="grid"><caption>${t("nav.activity")}</caption>
      <thead><tr>${["timestamp", "action", "collection", "item", "user", "origin", "ip"].map((c) => html`<th scope="col">${t(`activity.${c}`)}</th>`)}</tr></thead>
      <tbody>${(rows || []).map((r) => html`<tr data-action=${r.action}><td>${r.timestamp}</td><td>${r.action}</td><td>${fmt(r.collection)}</td>
        <td>${fmt(r.item)}</td><td>${fmt(r.user)}</td><td>${fmt(r.origin)}</td><td>${fmt(r.ip)}</td></tr>`)}</tbody>
    </table>
    ${rows && !rows.length ? html`<${Notice}>${t("activity.none")}<//>` : null}
    <nav class="pager" aria-label=${t("data.paging")}>
      <button type="button" disabled=${pageNo <= 1} onClick=${() => setPageNo(pageNo - 1)}>${t("data.prev")}</button>
      <span>${t("activity.page", { page: pageNo })}</span>
      <button type="button" disabled=${!rows || rows.length < 50} onClick=${() => setPageNo(pageNo + 1)}>${t("data.next")}</button>
    </nav>
  </section>`;
}

export default page(Activity);
