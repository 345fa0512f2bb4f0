// Server and plugin info: health and the installed plugins with their hooks and errors.
import { html, page, t, api, useLoad, ErrorBox, fmt } from "workeros-admin";

function Server() {
  const [health, healthError] = useLoad(() => api("GET", "/api/server/health").then((r) => r.data));
  const [plugins, pluginsError] = useLoad(() => api("GET", "/api/server/plugins").then((r) => r.data));
  const list = plugins?.plugins || [];
  return html`<section>
    <h1>${t("nav.server")}</h1>
    <${ErrorBox} error=${healthError || pluginsError}/>
    <h2>${t("server.health")}</h2>
    <dl class="facts">${Object.entries(health || {}).map(([k, v]) => html`<dt>${k}</dt><dd>${fmt(v)}</dd>`)}</dl>
    <table class="grid"><caption>${t("server.plugins", { n: list.length })}</caption>
      <thead><tr><th scope="col">${t("server.name")}</th><th scope="col">${t("server.version")}</th><th scope="col">${t("server.distribution")}</th><th scope="col">${t("server.hooks")}</th><th scope="col">${t("server.errors")}</th></tr></thead>
      <tbody>${list.map((p) => html`<tr data-plugin=${p.name}><td>${p.name}</td><td>${fmt(p.version)}</td><td>${fmt(p.distribution)}</td>
        <td class="hooks">${(p.hooks || []).join(", ")}</td><td>${p.error ? html`<span class="error">${p.error}</span>` : ""}</td></tr>`)}</tbody>
    </table>
  </section>`;
}

export default page(Server);
