// Access: roles, the permission editor (per collection and action: row filter with the
// filter builder, field allowlist, validation, presets), users (create, invite, suspend),
// API keys with their MCP guards (read-only switch, tool allowlist from GET /api/mcp/tools).
import {
  html, page, t, api, qs, useState, useLoad, Input, Select, JsonInput, ErrorBox, Notice, Dialog, FilterBuilder,
  loadSchema, navigate, fmt,
} from "workeros-admin";

const ACTIONS = ["create", "read", "update", "delete"];

function filterToRules(filter) {
  // Reopen a simple saved filter as rules; anything else stays editable as JSON.
  if (!filter) return { rules: [], logic: "_and" };
  const logic = filter._or ? "_or" : "_and";
  const parts = filter._and || filter._or || [filter];
  const rules = [];
  for (const part of parts) {
    const keys = Object.keys(part);
    if (keys.length !== 1 || keys[0].startsWith("_")) return null;
    const inner = part[keys[0]];
    const ops = Object.keys(inner || {});
    if (ops.length !== 1 || !ops[0].startsWith("_")) return null;
    const v = inner[ops[0]];
    rules.push({ field: keys[0], op: ops[0], value: Array.isArray(v) ? v.join(",") : String(v) });
  }
  return { rules, logic };
}

function PermissionForm({ role, collection, action, existing, onDone }) {
  const [filter, setFilter] = useState(existing?.filter ?? null);
  const [asJson, setAsJson] = useState(() => existing?.filter && !filterToRules(existing.filter));
  const [allFields, setAllFields] = useState(!existing || !existing.fields || existing.fields.includes("*"));
  const [fields, setFields] = useState(existing?.fields && !existing.fields.includes("*") ? existing.fields : []);
  const [validation, setValidation] = useState(existing?.validation ?? null);
  const [presets, setPresets] = useState(existing?.presets ?? null);
  const [error, setError] = useState(null);
  const initial = existing?.filter ? filterToRules(existing.filter) : null;
  const save = async (e) => {
    e.preventDefault(); setError(null);
    for (const v of [filter, validation, presets]) if (v instanceof Error) { setError({ message: t("error.json") }); return; }
    const body = { role: role.id, collection: collection.collection, action, filter, fields: allFields ? ["*"] : fields, validation, presets };
    try {
      if (existing) await api("PATCH", `/api/permissions/${existing.id}`, body); else await api("POST", "/api/permissions", body);
      onDone();
    } catch (err) { setError(err); }
  };
  const remove = async () => {
    try { await api("DELETE", `/api/permissions/${existing.id}`); onDone(); } catch (err) { setError(err); }
  };
  return html`<form onSubmit=${save} aria-label=${t("access.permission_form")}>
    <p>${t("access.permission_for", { role: role.name, collection: collection.collection, action })}</p>
    <${Input} label=${t("access.filter_as_json")} type="checkbox" value=${asJson} onInput=${setAsJson}/>
    ${asJson ? html`<${JsonInput} label=${t("access.row_filter")} name="filter" value=${filter} onChange=${setFilter}/>`
      : html`<${FilterBuilder} label=${t("access.row_filter")} fields=${collection.fields}
          initial=${initial} onChange=${setFilter}/>
        <p class="hint">${t("access.variables_hint")}</p>`}
    <fieldset><legend>${t("access.fields")}</legend>
      <${Input} label=${t("access.all_fields")} type="checkbox" value=${allFields} onInput=${setAllFields}/>
      ${allFields ? null : collection.fields.map((f) => html`<label class="check"><input type="checkbox" checked=${fields.includes(f.field)}
        onChange=${(e) => setFields(e.target.checked ? [...fields, f.field] : fields.filter((x) => x !== f.field))}/> ${f.field}</label>`)}
    </fieldset>
    ${action === "create" || action === "update" ? html`
      <${JsonInput} label=${t("access.validation")} name="validation" value=${validation} onChange=${setValidation}/>
      <${JsonInput} label=${t("access.presets")} name="presets" value=${presets} onChange=${setPresets}/>` : null}
    <${ErrorBox} error=${error}/>
    <div class="actions">
      <button type="submit" class="primary">${t("common.save")}</button>
      ${existing ? html`<button type="button" class="danger" onClick=${remove}>${t("access.revoke")}</button>` : null}
    </div>
  </form>`;
}

function RoleView({ role, onChanged }) {
  const [data, error, reload] = useLoad(async () => {
    const [schema, perms] = await Promise.all([loadSchema(true), api("GET", `/api/permissions${qs({ role: role.id })}`).then((r) => r.data)]);
    return { schema, perms };
  }, [role.id]);
  const [editing, setEditing] = useState(null);
  const [actionError, setActionError] = useState(null);
  const drop = async () => {
    if (!confirm(t("access.confirm_delete_role", { name: role.name }))) return;
    try { await api("DELETE", `/api/roles/${role.id}`); onChanged(); navigate("#/access/roles"); } catch (err) { setActionError(err); }
  };
  if (error) return html`<${ErrorBox} error=${error}/>`;
  if (!data) return html`<p role="status">${t("common.loading")}</p>`;
  const find = (c, a) => data.perms.find((p) => p.collection === c && p.action === a);
  return html`<section aria-labelledby="role-title">
    <h2 id="role-title">${role.name}</h2>
    <${ErrorBox} error=${actionError}/>
    ${role.admin_access ? html`<${Notice}>${t("access.admin_bypasses")}<//>` : html`
    <table class="grid permissions">
      <caption>${t("access.permissions")}</caption>
      <thead><tr><th scope="col">${t("access.collection")}</th>${ACTIONS.map((a) => html`<th scope="col">${t(`access.action.${a}`)}</th>`)}</tr></thead>
      <tbody>${data.schema.map((c) => html`<tr data-collection=${c.collection}><th scope="row">${c.collection}</th>
        ${ACTIONS.map((a) => { const p = find(c.collection, a); return html`<td>
          <button type="button" class=${p ? "perm on" : "perm"} aria-label=${t("access.edit_permission", { collection: c.collection, action: a })}
            onClick=${() => setEditing({ collection: c, action: a, existing: p })}>
            ${p ? (p.filter ? t("access.some_rows") : t("access.all_rows")) : t("access.none")}</button></td>`; })}
      </tr>`)}</tbody>
    </table>`}
    ${["admin", "public"].includes(role.id) || ["admin", "public"].includes(role.name) ? null
      : html`<button type="button" class="danger" onClick=${drop}>${t("access.delete_role")}</button>`}
    ${editing ? html`<${Dialog} title=${t("access.permission")} onClose=${() => setEditing(null)}>
      <${PermissionForm} role=${role} collection=${editing.collection} action=${editing.action} existing=${editing.existing}
        onDone=${() => { setEditing(null); reload(); }}/>
    <//>` : null}
  </section>`;
}

function Roles({ id }) {
  const [roles, error, reload] = useLoad(() => api("GET", "/api/roles").then((r) => r.data));
  const [name, setName] = useState("");
  const [formError, setFormError] = useState(null);
  const create = async (e) => {
    e.preventDefault(); setFormError(null);
    try { const r = await api("POST", "/api/roles", { name }); setName(""); reload(); navigate(`#/access/roles/${r.data.id}`); }
    catch (err) { setFormError(err); }
  };
  const role = (roles || []).find((r) => r.id === id);
  return html`<div class="split">
    <aside aria-label=${t("access.roles")}>
      <${ErrorBox} error=${error}/>
      <ul class="list">${(roles || []).map((r) => html`<li><a href=${`#/access/roles/${r.id}`} aria-current=${r.id === id ? "page" : undefined}>${r.name}</a></li>`)}</ul>
      <form onSubmit=${create} class="inline-form" aria-label=${t("access.new_role")}>
        <${Input} label=${t("access.role_name")} name="name" value=${name} onInput=${setName} error=${formError} required/>
        <button type="submit" class="primary">${t("access.create_role")}</button>
        <${ErrorBox} error=${formError}/>
      </form>
    </aside>
    <div class="content">${role ? html`<${RoleView} key=${role.id} role=${role} onChanged=${reload}/>` : html`<p>${t("access.pick_role")}</p>`}</div>
  </div>`;
}

function Users() {
  const [search, setSearch] = useState("");
  const [users, error, reload] = useLoad(() => api("GET", `/api/users${qs({ search, limit: 200 })}`).then((r) => r.data), [search]);
  const [roles] = useLoad(() => api("GET", "/api/roles").then((r) => r.data));
  const [form, setForm] = useState({ email: "", password: "", role: "" });
  const [formError, setFormError] = useState(null);
  const [note, setNote] = useState(null);
  const roleOptions = [{ value: "", label: t("access.no_role") }, ...(roles || []).map((r) => ({ value: r.id, label: r.name }))];
  const create = async (e, invite) => {
    e.preventDefault(); setFormError(null); setNote(null);
    try {
      if (invite) { await api("POST", "/api/users/invite", { email: form.email, role: form.role || undefined }); setNote(t("access.invited", { email: form.email })); }
      else await api("POST", "/api/users", { email: form.email, password: form.password, role: form.role || null });
      setForm({ email: "", password: "", role: "" }); reload();
    } catch (err) { setFormError(err); }
  };
  const patch = async (u, body) => {
    setFormError(null);
    try { await api("PATCH", `/api/users/${u.id}`, body); reload(); } catch (err) { setFormError(err); }
  };
  const roleName = (id) => (roles || []).find((r) => r.id === id)?.name || id || "—";
  return html`<section>
    <form role="search" onSubmit=${(e) => e.preventDefault()}><${Input} label=${t("access.search_users")} type="search" value=${search} onInput=${setSearch}/></form>
    <${ErrorBox} error=${error || formError}/><${Notice}>${note}<//>
    <table class="grid"><caption>${t("access.users")}</caption>
      <thead><tr><th scope="col">${t("auth.email")}</th><th scope="col">${t("access.role")}</th><th scope="col">${t("access.status")}</th><th scope="col">${t("access.last_login")}</th><th scope="col"><span class="sr">${t("common.actions")}</span></th></tr></thead>
      <tbody>${(users || []).map((u) => html`<tr data-user=${u.email}><td>${u.email}</td>
        <td><select aria-label=${t("access.role_of", { email: u.email })} value=${u.role || ""} onChange=${(e) => patch(u, { role: e.target.value || null })}>
          ${roleOptions.map((o) => html`<option value=${o.value}>${o.label}</option>`)}</select></td>
        <td>${u.status}</td><td>${fmt(u.last_login_at)}</td>
        <td>${u.status === "active" ? html`<button type="button" class="link danger" onClick=${() => patch(u, { status: "suspended" })}>${t("access.suspend")}<span class="sr"> ${u.email}</span></button>`
          : html`<button type="button" class="link" onClick=${() => patch(u, { status: "active" })}>${t("access.activate")}<span class="sr"> ${u.email}</span></button>`}</td>
      </tr>`)}</tbody>
    </table>
    <form onSubmit=${(e) => create(e, false)} class="inline-form" aria-label=${t("access.new_user")}>
      <${Input} label=${t("auth.email")} name="email" type="email" value=${form.email} onInput=${(v) => setForm({ ...form, email: v })} error=${formError} required/>
      <${Input} label=${t("auth.password")} name="password" type="password" value=${form.password} onInput=${(v) => setForm({ ...form, password: v })} error=${formError} autocomplete="new-password"/>
      <${Select} label=${t("access.role")} name="role" value=${form.role} onChange=${(v) => setForm({ ...form, role: v })} options=${roleOptions}/>
      <button type="submit" class="primary">${t("access.create_user")}</button>
      <button type="button" onClick=${(e) => create(e, true)}>${t("access.invite")}</button>
    </form>
  </section>`;
}

function ApiKeys() {
  const [keys, error, reload] = useLoad(() => api("GET", "/api/api-keys").then((r) => r.data));
  const [users] = useLoad(() => api("GET", "/api/users?limit=200").then((r) => r.data).catch(() => []));
  const [tools, toolsError] = useLoad(() => api("GET", "/api/mcp/tools").then((r) => r.data).catch((e) => { if (e.status === 404) return null; throw e; }));
  const [form, setForm] = useState({ name: "", user: "", mcp_read_only: false, limit_tools: false, mcp_tools: [] });
  const [created, setCreated] = useState(null);
  const [formError, setFormError] = useState(null);
  const toolList = Array.isArray(tools) ? tools : tools?.tools || [];
  const create = async (e) => {
    e.preventDefault(); setFormError(null); setCreated(null);
    const body = { name: form.name, mcp_read_only: form.mcp_read_only };
    if (form.user) body.user = form.user;
    if (form.limit_tools) body.mcp_tools = form.mcp_tools;
    try { const r = await api("POST", "/api/api-keys", body); setCreated(r.data); setForm({ ...form, name: "" }); reload(); }
    catch (err) { setFormError(err); }
  };
  const revoke = async (k) => {
    if (!confirm(t("access.confirm_revoke", { name: k.name }))) return;
    try { await api("DELETE", `/api/api-keys/${k.id}`); reload(); } catch (err) { setFormError(err); }
  };
  return html`<section>
    <${ErrorBox} error=${error || formError || toolsError}/>
    ${created ? html`<div class="notice" role="status"><p>${t("access.key_once")}</p><code class="key" data-testid="new-key">${created.key}</code></div>` : null}
    <table class="grid"><caption>${t("access.api_keys")}</caption>
      <thead><tr><th scope="col">${t("access.key_name")}</th><th scope="col">${t("access.prefix")}</th><th scope="col">${t("access.mcp_read_only")}</th><th scope="col">${t("access.mcp_tools")}</th><th scope="col">${t("access.status")}</th><th scope="col"><span class="sr">${t("common.actions")}</span></th></tr></thead>
      <tbody>${(keys || []).map((k) => html`<tr data-key=${k.name}><td>${k.name}</td><td><code>${k.prefix}</code></td>
        <td>${k.mcp_read_only ? t("common.yes") : t("common.no")}</td><td>${k.mcp_tools ? k.mcp_tools.join(", ") : t("access.all_tools")}</td>
        <td>${k.revoked_at ? t("access.revoked") : t("access.active")}</td>
        <td>${k.revoked_at ? null : html`<button type="button" class="link danger" onClick=${() => revoke(k)}>${t("access.revoke")}<span class="sr"> ${k.name}</span></button>`}</td></tr>`)}</tbody>
    </table>
    <form onSubmit=${create} aria-label=${t("access.new_key")}>
      <h2>${t("access.new_key")}</h2>
      <${Input} label=${t("access.key_name")} name="name" value=${form.name} onInput=${(v) => setForm({ ...form, name: v })} error=${formError} required/>
      <${Select} label=${t("access.key_user")} name="user" value=${form.user} onChange=${(v) => setForm({ ...form, user: v })}
        options=${[{ value: "", label: t("access.me") }, ...(users || []).map((u) => ({ value: u.id, label: u.email }))]}/>
      ${tools === null ? html`<p class="hint">${t("access.no_mcp")}</p>` : html`<fieldset><legend>${t("access.mcp_guards")}</legend>
        <${Input} label=${t("access.mcp_read_only")} name="mcp_read_only" type="checkbox" value=${form.mcp_read_only} onInput=${(v) => setForm({ ...form, mcp_read_only: v })}/>
        <${Input} label=${t("access.limit_tools")} name="limit_tools" type="checkbox" value=${form.limit_tools} onInput=${(v) => setForm({ ...form, limit_tools: v })}/>
        ${form.limit_tools ? html`<div class="tools">${toolList.map((tool) => html`<label class="check" title=${tool.description || ""}><input type="checkbox"
            checked=${form.mcp_tools.includes(tool.name)} onChange=${(e) => setForm({ ...form, mcp_tools: e.target.checked ? [...form.mcp_tools, tool.name] : form.mcp_tools.filter((x) => x !== tool.name) })}/>
            ${tool.name}${tool.annotations?.readOnlyHint || tool.read_only ? html` <small>(${t("access.reads")})</small>` : ""}</label>`)}</div>` : null}
      </fieldset>`}
      <button type="submit" class="primary">${t("access.create_key")}</button>
    </form>
  </section>`;
}

function Access({ params }) {
  const tab = params[0] || "roles";
  const tabs = ["roles", "users", "keys"];
  return html`<div>
    <h1>${t("nav.access")}</h1>
    <nav class="tabs" aria-label=${t("access.sections")}>
      ${tabs.map((x) => html`<a href=${`#/access/${x}`} aria-current=${x === tab ? "page" : undefined}>${t(`access.tab.${x}`)}</a>`)}
    </nav>
    ${tab === "roles" ? html`<${Roles} id=${params[1]}/>` : tab === "users" ? html`<${Users}/>` : html`<${ApiKeys}/>`}
  </div>`;
}

export default page(Access);
