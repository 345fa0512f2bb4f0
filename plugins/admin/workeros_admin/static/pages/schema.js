// Schema: collections (create, rename, delete, adopt), fields of every type (and relations).
import { html, page, t, api, useState, useLoad, Input, Select, ErrorBox, Notice, Dialog, loadSchema, forgetSchema, navigate, fmt } from "workeros-admin";

const BASE_TYPES = ["string", "text", "integer", "bigint", "float", "decimal", "boolean", "json", "uuid", "datetime", "date", "time"];

function NewCollection({ onDone }) {
  const [name, setName] = useState("");
  const [pk, setPk] = useState("integer");
  const [adopt, setAdopt] = useState(false);
  const [error, setError] = useState(null);
  const submit = async (e) => {
    e.preventDefault(); setError(null);
    try {
      await api("POST", "/api/collections", adopt ? { collection: name, adopt: true } : { collection: name, pk_type: pk, fields: [] });
      forgetSchema(); onDone(name);
    } catch (err) { setError(err); }
  };
  return html`<form onSubmit=${submit} class="inline-form" aria-label=${t("schema.new_collection")}>
    <${Input} label=${t("schema.collection_name")} name="collection" value=${name} onInput=${setName} error=${error} required/>
    <${Select} label=${t("schema.pk_type")} value=${pk} onChange=${setPk} options=${["integer", "uuid"]} disabled=${adopt}/>
    <${Input} label=${t("schema.adopt")} type="checkbox" value=${adopt} onInput=${setAdopt}/>
    <button type="submit" class="primary">${t("schema.create_collection")}</button>
    <${ErrorBox} error=${error}/>
  </form>`;
}

function FieldForm({ collection, field, collections, onDone }) {
  const editing = !!field;
  const [name, setName] = useState(field?.field || "");
  const [type, setType] = useState(field?.relation ? "m2o" : field?.type || "string");
  const [related, setRelated] = useState(field?.relation?.related_collection || collections[0]?.collection || "");
  const [nullable, setNullable] = useState(field ? field.nullable : true);
  const [unique, setUnique] = useState(field?.unique || false);
  const [dflt, setDflt] = useState(field?.default ?? "");
  const [extra, setExtra] = useState({ dimensions: field?.options?.dimensions || "", metric: field?.options?.metric || "cosine",
    source: field?.options?.source || "" });
  const [error, setError] = useState(null);
  // file and vector fields exist only where their plugins are installed.
  const [plugins] = useLoad(() => api("GET", "/api/server/plugins").then((r) => r.data.plugins.map((p) => p.name)).catch(() => []));
  const known = [...BASE_TYPES, "m2o", ...((plugins || []).includes("files") ? ["file"] : []), ...((plugins || []).includes("vectors") ? ["vector"] : [])];
  const submit = async (e) => {
    e.preventDefault(); setError(null);
    try {
      if (type === "m2o" && !editing) {
        await api("POST", "/api/relations", { collection, field: name, related_collection: related });
      } else {
        const body = { field: name, nullable, unique };
        if (!editing || type !== field.type) body.type = type;
        if (dflt !== "" && dflt !== null) body.default = ["integer", "bigint", "float", "decimal"].includes(type) ? Number(dflt) : type === "boolean" ? dflt === "true" : dflt;
        else if (editing && field.default !== null) body.default = null;
        if (type === "vector" && !editing) {
          if (extra.dimensions) body.dimensions = Number(extra.dimensions);
          body.metric = extra.metric;
          if (extra.source) body.source = extra.source;
        }
        if (type === "m2o") delete body.type;
        if (editing) await api("PATCH", `/api/fields/${collection}/${field.field}`, body);
        else await api("POST", `/api/fields/${collection}`, body);
      }
      forgetSchema(); onDone();
    } catch (err) { setError(err); }
  };
  return html`<form onSubmit=${submit} aria-label=${editing ? t("schema.edit_field") : t("schema.add_field")}>
    <${Input} label=${t("schema.field_name")} name="field" value=${name} onInput=${setName} error=${error} required/>
    <${Select} label=${t("schema.field_type")} name="type" value=${type} onChange=${setType} options=${known} disabled=${editing && type === "m2o"}/>
    ${type === "m2o" ? html`<${Select} label=${t("schema.related_collection")} name="related" value=${related} onChange=${setRelated}
        options=${[...collections.map((c) => c.collection), "wos_users"]} disabled=${editing}/>` : null}
    ${type === "vector" ? html`<${Input} label=${t("schema.dimensions")} name="dimensions" type="number" value=${extra.dimensions} onInput=${(v) => setExtra({ ...extra, dimensions: v })} error=${error}/>
      <${Select} label=${t("schema.metric")} name="metric" value=${extra.metric} onChange=${(v) => setExtra({ ...extra, metric: v })} options=${["cosine", "l2", "ip"]}/>
      <${Input} label=${t("schema.source")} name="source" value=${extra.source} onInput=${(v) => setExtra({ ...extra, source: v })} error=${error}/>` : null}
    ${type === "file" ? html`<p class="hint">${t("schema.file_hint")}</p>` : null}
    <${Input} label=${t("schema.default")} name="default" value=${dflt} onInput=${setDflt} error=${error}/>
    <${Input} label=${t("schema.nullable")} name="nullable" type="checkbox" value=${nullable} onInput=${setNullable}/>
    <${Input} label=${t("schema.unique")} name="unique" type="checkbox" value=${unique} onInput=${setUnique}/>
    <${ErrorBox} error=${error}/>
    <button type="submit" class="primary">${t("common.save")}</button>
  </form>`;
}

function CollectionView({ slug, collections, reloadAll }) {
  const [col, error, reload] = useLoad(() => api("GET", `/api/collections/${slug}`).then((r) => r.data), [slug]);
  const [dialog, setDialog] = useState(null);
  const [newName, setNewName] = useState("");
  const [actionError, setActionError] = useState(null);
  const done = () => { setDialog(null); reload(); reloadAll(); };
  const rename = async (e) => {
    e.preventDefault(); setActionError(null);
    try { await api("PATCH", `/api/collections/${slug}`, { collection: newName }); forgetSchema(); reloadAll(); navigate(`#/schema/${newName}`); }
    catch (err) { setActionError(err); }
  };
  const drop = async () => {
    if (!confirm(t("schema.confirm_delete", { name: slug }))) return;
    try { await api("DELETE", `/api/collections/${slug}`); forgetSchema(); reloadAll(); navigate("#/schema"); }
    catch (err) { setActionError(err); }
  };
  const dropField = async (f) => {
    if (!confirm(t("schema.confirm_delete_field", { name: f.field }))) return;
    try { await api("DELETE", `/api/fields/${slug}/${f.field}`); forgetSchema(); reload(); } catch (err) { setActionError(err); }
  };
  if (error) return html`<${ErrorBox} error=${error}/>`;
  if (!col) return html`<p role="status">${t("common.loading")}</p>`;
  return html`<section aria-labelledby="col-title">
    <h2 id="col-title">${col.collection} ${col.adopted ? html`<small>(${t("schema.adopted")})</small>` : null}</h2>
    <${ErrorBox} error=${actionError}/>
    <table class="grid">
      <caption>${t("schema.fields")}</caption>
      <thead><tr><th scope="col">${t("schema.field_name")}</th><th scope="col">${t("schema.field_type")}</th><th scope="col">${t("schema.nullable")}</th><th scope="col">${t("schema.unique")}</th><th scope="col">${t("schema.default")}</th><th scope="col">${t("schema.relation")}</th><th scope="col"><span class="sr">${t("common.actions")}</span></th></tr></thead>
      <tbody>${col.fields.map((f) => html`<tr data-field=${f.field}>
        <td>${f.field}${f.primary_key ? html` <small>(${t("schema.primary_key")})</small>` : ""}</td><td>${f.type}</td><td>${f.nullable ? "✓" : ""}</td><td>${f.unique ? "✓" : ""}</td>
        <td>${fmt(f.default)}</td><td>${f.relation ? `${f.relation.kind || "m2o"} → ${f.relation.related_collection}` : ""}</td>
        <td>${f.primary_key ? null : html`<button type="button" class="link" onClick=${() => setDialog({ field: f })}>${t("common.edit")}<span class="sr"> ${f.field}</span></button>
          <button type="button" class="link danger" onClick=${() => dropField(f)}>${t("common.delete")}<span class="sr"> ${f.field}</span></button>`}</td>
      </tr>`)}</tbody>
    </table>
    <p><button type="button" class="primary" onClick=${() => setDialog({})}>${t("schema.add_field")}</button>
       <a class="button" href=${`#/data/${slug}`}>${t("schema.open_data")}</a></p>
    <details><summary>${t("schema.collection_settings")}</summary>
      <form onSubmit=${rename} class="inline-form" aria-label=${t("schema.rename")}>
        <${Input} label=${t("schema.new_name")} name="collection" value=${newName} onInput=${setNewName} error=${actionError}/>
        <button type="submit">${t("schema.rename")}</button>
      </form>
      <button type="button" class="danger" onClick=${drop}>${t("schema.delete_collection")}</button>
    </details>
    ${dialog ? html`<${Dialog} title=${dialog.field ? t("schema.edit_field") : t("schema.add_field")} onClose=${() => setDialog(null)}>
      <${FieldForm} collection=${slug} field=${dialog.field} collections=${collections} onDone=${done}/>
    <//>` : null}
  </section>`;
}

function Schema({ params }) {
  const [collections, error, reload] = useLoad(() => loadSchema(true));
  const slug = params[0];
  return html`<div class="split">
    <aside aria-label=${t("schema.collections")}>
      <h1>${t("nav.schema")}</h1>
      <${ErrorBox} error=${error}/>
      <ul class="list">${(collections || []).map((c) => html`<li><a href=${`#/schema/${c.collection}`} aria-current=${c.collection === slug ? "page" : undefined}>${c.collection}</a></li>`)}</ul>
      ${collections && !collections.length ? html`<${Notice}>${t("schema.empty")}<//>` : null}
      <${NewCollection} onDone=${(name) => { reload(); navigate(`#/schema/${name}`); }}/>
    </aside>
    <div class="content">${slug ? html`<${CollectionView} key=${slug} slug=${slug} collections=${collections || []} reloadAll=${reload}/>` : html`<p>${t("schema.pick")}</p>`}</div>
  </div>`;
}

export default page(Schema);
