// Data: a table per collection (paging, sort, columns, search, filter builder with its DSL
// JSON, live updates), the item editor (relational pickers, file uploads, one-to-many and
// many-to-many editors), revisions with diff and restore, and restoring a whole collection
// to a time.
import {
  html, page, t, api, qs, subscribe, useState, useEffect, useRef, useLoad, Input, Select, ErrorBox, Notice,
  FilterBuilder, loadSchema, navigate, fmt, uploadFile, AssetImage,
} from "workeros-admin";

const NUMERIC = ["integer", "bigint", "float", "decimal"];

function labelField(collection) {
  const f = (collection?.fields || []).find((x) => ["string", "text"].includes(x.type) && !x.primary_key);
  return f ? f.field : null;
}

function CollectionPicker() {
  const [collections, error] = useLoad(() => loadSchema(true));
  return html`<section><h1>${t("nav.data")}</h1><${ErrorBox} error=${error}/>
    ${collections && !collections.length ? html`<${Notice}>${t("data.no_collections")} <a href="#/schema">${t("nav.schema")}</a><//>` : null}
    <ul class="list cards">${(collections || []).map((c) => html`<li><a href=${`#/data/${c.collection}`}>${c.collection}</a></li>`)}</ul>
  </section>`;
}

function Table({ slug, collection }) {
  const fields = collection.fields.filter((f) => f.type !== "alias" && f.type !== "o2m" && f.type !== "m2m");
  const [columns, setColumns] = useState(() => fields.slice(0, 8).map((f) => f.field));
  const [sort, setSort] = useState("");
  const [pageNo, setPageNo] = useState(1);
  const [limit, setLimit] = useState(25);
  const [search, setSearch] = useState("");
  const [query, setQuery] = useState("");
  const [filter, setFilter] = useState(null);
  const [selected, setSelected] = useState(new Set());
  const [actionError, setActionError] = useState(null);
  const [live, setLive] = useState(0);
  const [at, setAt] = useState("");
  const [note, setNote] = useState(null);
  const pk = collection.primary_key || "id";
  const cols = columns.includes(pk) ? columns : [pk, ...columns];
  const [result, error, reload] = useLoad(() => api("GET", `/api/items/${slug}${qs({
    limit, page: pageNo, sort, search: query, filter, fields: cols.join(","), meta: "filter_count" })}`),
  [slug, limit, pageNo, sort, query, JSON.stringify(filter), cols.join(",")]);
  // Live updates: reload the page on any event (debounced), like another editor's change.
  const pending = useRef(null);
  useEffect(() => subscribe(slug, () => {
    clearTimeout(pending.current);
    pending.current = setTimeout(() => { setLive((n) => n + 1); reload(); }, 150);
  }), [slug]);
  const rows = result?.data || [];
  const total = result?.meta?.filter_count ?? rows.length;
  const pages = Math.max(1, Math.ceil(total / limit));
  const toggleSort = (f) => { setSort(sort === f ? `-${f}` : f); setPageNo(1); };
  const remove = async () => {
    if (!selected.size || !confirm(t("data.confirm_delete", { n: selected.size }))) return;
    setActionError(null);
    try { await api("DELETE", `/api/items/${slug}`, [...selected]); setSelected(new Set()); reload(); } catch (err) { setActionError(err); }
  };
  const restoreCollection = async (e) => {
    e.preventDefault(); setActionError(null); setNote(null);
    try {
      await api("POST", `/api/collections/${slug}/restore${qs({ at: new Date(at).toISOString() })}`);
      setNote(t("data.restored_collection", { at })); reload();
    } catch (err) { setActionError(err); }
  };
  return html`<section aria-labelledby="data-title">
    <h1 id="data-title">${slug}</h1>
    <div class="toolbar">
      <form role="search" onSubmit=${(e) => { e.preventDefault(); setQuery(search); setPageNo(1); }}>
        <${Input} label=${t("data.search")} type="search" name="search" value=${search} onInput=${setSearch}/>
        <button type="submit">${t("data.search")}</button>
      </form>
      <a class="button primary" href=${`#/data/${slug}/+`}>${t("data.new_item")}</a>
      <button type="button" class="danger" disabled=${!selected.size} onClick=${remove}>${t("data.delete_selected", { n: selected.size })}</button>
      <span class="live" aria-live="polite" data-live=${live}>${live ? t("data.live_updated") : t("data.live")}</span>
    </div>
    <details><summary>${t("data.columns")}</summary>
      <fieldset class="columns"><legend>${t("data.columns")}</legend>
        ${fields.map((f) => html`<label><input type="checkbox" checked=${columns.includes(f.field)}
          onChange=${(e) => setColumns(e.target.checked ? [...columns, f.field] : columns.filter((c) => c !== f.field))}/> ${f.field}</label>`)}
      </fieldset>
    </details>
    <details><summary>${t("filter.title")}${filter ? " •" : ""}</summary>
      <${FilterBuilder} fields=${fields} onChange=${(f) => { setFilter(f); setPageNo(1); }}/>
    </details>
    <${ErrorBox} error=${error || actionError}/>
    <${Notice}>${note}<//>
    <div class="table-wrap"><table class="grid data" aria-rowcount=${total}>
      <thead><tr>
        <th scope="col"><span class="sr">${t("data.select")}</span></th>
        ${cols.map((c) => html`<th scope="col" aria-sort=${sort === c ? "ascending" : sort === `-${c}` ? "descending" : "none"}>
          <button type="button" class="link" onClick=${() => toggleSort(c)}>${c}${sort === c ? " ▲" : sort === `-${c}` ? " ▼" : ""}</button></th>`)}
      </tr></thead>
      <tbody>${rows.map((row) => html`<tr key=${row[pk]} data-id=${row[pk]}>
        <td><input type="checkbox" aria-label=${t("data.select_row", { id: row[pk] })} checked=${selected.has(row[pk])}
          onChange=${(e) => { const next = new Set(selected); e.target.checked ? next.add(row[pk]) : next.delete(row[pk]); setSelected(next); }}/></td>
        ${cols.map((c) => html`<td>${c === pk ? html`<a href=${`#/data/${slug}/${encodeURIComponent(row[pk])}`}>${fmt(row[c])}</a>` : fmt(row[c])}</td>`)}
      </tr>`)}</tbody>
    </table></div>
    ${result && !rows.length ? html`<${Notice}>${t("data.no_rows")}<//>` : null}
    <nav class="pager" aria-label=${t("data.paging")}>
      <button type="button" disabled=${pageNo <= 1} onClick=${() => setPageNo(pageNo - 1)}>${t("data.prev")}</button>
      <span>${t("data.page_of", { page: pageNo, pages, total })}</span>
      <button type="button" disabled=${pageNo >= pages} onClick=${() => setPageNo(pageNo + 1)}>${t("data.next")}</button>
      <${Select} label=${t("data.per_page")} value=${String(limit)} onChange=${(v) => { setLimit(Number(v)); setPageNo(1); }} options=${["25", "50", "100", "250"]}/>
    </nav>
    <details><summary>${t("data.restore_collection")}</summary>
      <form onSubmit=${restoreCollection} class="inline-form" aria-label=${t("data.restore_collection")}>
        <${Input} label=${t("data.restore_at")} type="datetime-local" step="1" value=${at} onInput=${setAt} required/>
        <button type="submit" class="danger">${t("data.restore")}</button>
      </form>
    </details>
  </section>`;
}

function RelationPicker({ field, value, onChange, schema }) {
  const related = field.relation.related_collection;
  const target = schema.find((c) => c.collection === related);
  const shown = labelField(target);
  const [options, error] = useLoad(() => api("GET", `/api/items/${related}${qs({ limit: 200, fields: shown ? `id,${shown}` : "id" })}`).then((r) => r.data), [related]);
  return html`<div class="field">
    <label for=${`rel-${field.field}`}>${field.field} <small>→ ${related}</small></label>
    <select id=${`rel-${field.field}`} name=${field.field} value=${value ?? ""} onChange=${(e) => onChange(e.target.value === "" ? null : (NUMERIC.includes(field.type) ? Number(e.target.value) : e.target.value))}>
      <option value="">—</option>
      ${(options || []).map((o) => html`<option value=${o.id}>${shown ? `${o[shown]} (#${o.id})` : o.id}</option>`)}
    </select>
    <${ErrorBox} error=${error}/>
  </div>`;
}

const isImage = (file) => /^image\/(png|jpeg|gif|webp|avif|tiff|bmp)$/.test(file?.type || "");

/** A `file` field: the chosen file (a thumbnail for images), upload a new one, pick one
 * from the library, or clear it. */
function FilePicker({ field, value, onChange, error }) {
  const [progress, setProgress] = useState(null);
  const [actionError, setActionError] = useState(null);
  const [current] = useLoad(() => (value ? api("GET", `/api/files/${encodeURIComponent(value)}`).then((r) => r.data, () => null) : Promise.resolve(null)), [value]);
  const [library, libraryError] = useLoad(() => api("GET", `/api/files${qs({ sort: "-uploaded_on", limit: 100, fields: "id,title,filename_download,type" })}`).then((r) => r.data), [value]);
  const upload = async (file) => {
    setActionError(null); setProgress(0);
    try { const row = await uploadFile(file, { onProgress: (sent, total) => setProgress(total ? sent / total : 1) }); onChange(row.id); }
    catch (err) { setActionError(err); }
    setProgress(null);
  };
  const id = `file-${field.field}`;
  const message = error && error.field === field.field ? error.message : null;
  return html`<fieldset class="file-field" data-file-field=${field.field}>
    <legend>${field.field} <small>${t("data.file_field")}${field.nullable ? "" : " *"}</small></legend>
    ${current ? html`<div class="file-current">
      ${isImage(current) ? html`<${AssetImage} id=${current.id} params=${{ width: 96, height: 96, fit: "cover", format: "webp" }} alt=${current.title || current.filename_download} class="thumb"/>` : null}
      <span>${current.title || current.filename_download}</span></div>` : value ? html`<span class="mono">${value}</span>` : html`<span>${t("data.no_file")}</span>`}
    <div class="inline-form">
      <div class="field"><label for=${`${id}-upload`}>${t("data.upload_file")}</label>
        <input id=${`${id}-upload`} type="file" onChange=${(e) => { const f = e.target.files[0]; e.target.value = ""; if (f) upload(f); }}/></div>
      <div class="field"><label for=${`${id}-pick`}>${t("data.pick_file")}</label>
        <select id=${`${id}-pick`} name=${field.field} value=${value ?? ""} onChange=${(e) => onChange(e.target.value || null)}>
          <option value="">—</option>
          ${value && !(library || []).some((f) => f.id === value) ? html`<option value=${value}>${current?.filename_download || value}</option>` : null}
          ${(library || []).map((f) => html`<option value=${f.id}>${f.title || f.filename_download}</option>`)}
        </select></div>
    </div>
    ${progress !== null ? html`<progress max="1" value=${progress} aria-label=${t("data.uploading")}></progress>` : null}
    ${message ? html`<span class="field-error">${message}</span>` : null}
    <${ErrorBox} error=${actionError || libraryError}/>
  </fieldset>`;
}

function labelOf(target, row) {
  const shown = labelField(target);
  const pk = target?.primary_key || "id";
  return shown && row[shown] !== null && row[shown] !== undefined ? `${row[shown]} (#${row[pk]})` : `#${row[pk]}`;
}

/** One-to-many: the related items whose foreign key points at this item; link one more
 * (its key is set to this item) or unlink one (its key set to null). */
function O2MEditor({ field, id, schema, pk }) {
  const rel = field.relation;
  const target = schema.find((c) => c.collection === rel.related_collection);
  const tpk = target?.primary_key || "id";
  const shown = labelField(target);
  const fields = [tpk, rel.related_field, ...(shown ? [shown] : [])].join(",");
  const [linked, error, reload] = useLoad(() => api("GET", `/api/items/${rel.related_collection}${qs({ filter: { [rel.related_field]: { _eq: id } }, fields, limit: 200, sort: tpk })}`).then((r) => r.data), [id]);
  const [others, othersError, reloadOthers] = useLoad(() => api("GET", `/api/items/${rel.related_collection}${qs({ fields, limit: 200, sort: tpk })}`).then((r) => r.data), [id]);
  const [choice, setChoice] = useState("");
  const [actionError, setActionError] = useState(null);
  const set = async (key, value) => {
    setActionError(null);
    try { await api("PATCH", `/api/items/${rel.related_collection}/${encodeURIComponent(key)}`, { [rel.related_field]: value }); setChoice(""); reload(); reloadOthers(); }
    catch (err) { setActionError(err); }
  };
  const linkedKeys = new Set((linked || []).map((r) => String(r[tpk])));
  const candidates = (others || []).filter((r) => !linkedKeys.has(String(r[tpk])));
  return html`<fieldset class="relation-editor" data-relation=${field.field}>
    <legend>${field.field} <small>${t("data.o2m", { related: rel.related_collection })}</small></legend>
    <ul class="list">${(linked || []).map((r) => html`<li data-related=${r[tpk]}>
      <a href=${`#/data/${rel.related_collection}/${encodeURIComponent(r[tpk])}`}>${labelOf(target, r)}</a>
      <button type="button" class="link danger" onClick=${() => set(r[tpk], null)}>${t("data.unlink")}<span class="sr"> ${labelOf(target, r)}</span></button>
    </li>`)}</ul>
    ${linked && !linked.length ? html`<p class="hint">${t("data.none_linked")}</p>` : null}
    <div class="inline-form">
      <${Select} label=${t("data.link_item", { field: field.field })} value=${choice} onChange=${setChoice}
        options=${[{ value: "", label: "—" }, ...candidates.map((r) => ({ value: String(r[tpk]), label: labelOf(target, r) }))]}/>
      <button type="button" disabled=${!choice} onClick=${() => set(candidates.find((r) => String(r[tpk]) === choice)[tpk], id)}>${t("data.link")}</button>
      <a class="button" href=${`#/data/${rel.related_collection}/+`}>${t("data.new_related", { collection: rel.related_collection })}</a>
    </div>
    <${ErrorBox} error=${error || othersError || actionError}/>
  </fieldset>`;
}

/** Many-to-many: rows of the junction collection link this item to related items; add a
 * link (a junction row) or remove one. */
function M2MEditor({ field, id, schema }) {
  const rel = field.relation;
  const target = schema.find((c) => c.collection === rel.related_collection);
  const junction = schema.find((c) => c.collection === rel.junction_collection);
  const tpk = target?.primary_key || "id";
  const jpk = junction?.primary_key || "id";
  const shown = labelField(target);
  const fields = [tpk, ...(shown ? [shown] : [])].join(",");
  const [links, error, reload] = useLoad(() => api("GET", `/api/items/${rel.junction_collection}${qs({
    filter: { [rel.junction_field]: { _eq: id } }, fields: [jpk, rel.junction_related_field].join(","), limit: 200, sort: jpk })}`).then((r) => r.data), [id]);
  const [others, othersError] = useLoad(() => api("GET", `/api/items/${rel.related_collection}${qs({ fields, limit: 200, sort: tpk })}`).then((r) => r.data), [id]);
  const [choice, setChoice] = useState("");
  const [actionError, setActionError] = useState(null);
  const byKey = new Map((others || []).map((r) => [String(r[tpk]), r]));
  const linkedKeys = new Set((links || []).map((l) => String(l[rel.junction_related_field])));
  const add = async () => {
    setActionError(null);
    try { await api("POST", `/api/items/${rel.junction_collection}`, { [rel.junction_field]: id, [rel.junction_related_field]: byKey.get(choice)[tpk] }); setChoice(""); reload(); }
    catch (err) { setActionError(err); }
  };
  const remove = async (link) => {
    setActionError(null);
    try { await api("DELETE", `/api/items/${rel.junction_collection}/${encodeURIComponent(link[jpk])}`); reload(); } catch (err) { setActionError(err); }
  };
  return html`<fieldset class="relation-editor" data-relation=${field.field}>
    <legend>${field.field} <small>${t("data.m2m", { related: rel.related_collection, junction: rel.junction_collection })}</small></legend>
    <ul class="list">${(links || []).map((l) => {
      const key = l[rel.junction_related_field]; const row = byKey.get(String(key));
      const label = row ? labelOf(target, row) : `#${key}`;
      return html`<li data-related=${key}>
        <a href=${`#/data/${rel.related_collection}/${encodeURIComponent(key)}`}>${label}</a>
        <button type="button" class="link danger" onClick=${() => remove(l)}>${t("data.unlink")}<span class="sr"> ${label}</span></button>
      </li>`;
    })}</ul>
    ${links && !links.length ? html`<p class="hint">${t("data.none_linked")}</p>` : null}
    <div class="inline-form">
      <${Select} label=${t("data.link_item", { field: field.field })} value=${choice} onChange=${setChoice}
        options=${[{ value: "", label: "—" }, ...(others || []).filter((r) => !linkedKeys.has(String(r[tpk]))).map((r) => ({ value: String(r[tpk]), label: labelOf(target, r) }))]}/>
      <button type="button" disabled=${!choice} onClick=${add}>${t("data.link")}</button>
    </div>
    <${ErrorBox} error=${error || othersError || actionError}/>
  </fieldset>`;
}

function FieldInput({ field, value, onChange, error, schema }) {
  if (field.type === "file") return html`<${FilePicker} field=${field} value=${value} onChange=${onChange} error=${error}/>`;
  if (field.relation && field.relation.related_collection && schema.some((c) => c.collection === field.relation.related_collection)) {
    return html`<${RelationPicker} field=${field} value=${value} onChange=${onChange} schema=${schema}/>`;
  }
  const label = html`${field.field} <small>${field.type}${field.nullable ? "" : " *"}</small>`;
  const set = (v) => {
    if (v === "" && field.nullable) return onChange(null);
    if (NUMERIC.includes(field.type)) return onChange(v === "" ? null : Number(v));
    return onChange(v);
  };
  switch (field.type) {
    case "boolean": return html`<${Input} label=${label} name=${field.field} type="checkbox" value=${value} onInput=${onChange} error=${error}/>`;
    case "text": return html`<${Input} label=${label} name=${field.field} type="textarea" value=${value} onInput=${set} error=${error}/>`;
    case "json": return html`<${Input} label=${label} name=${field.field} type="textarea" class="mono" value=${value === null || value === undefined ? "" : JSON.stringify(value)}
      onInput=${(v) => { try { onChange(v ? JSON.parse(v) : null); } catch { /* keep typing */ } }} error=${error}/>`;
    case "integer": case "bigint": case "float": case "decimal":
      return html`<${Input} label=${label} name=${field.field} type="number" step="any" value=${value} onInput=${set} error=${error}/>`;
    case "date": return html`<${Input} label=${label} name=${field.field} type="date" value=${value} onInput=${set} error=${error}/>`;
    default: return html`<${Input} label=${label} name=${field.field} value=${value} onInput=${set} error=${error}/>`;
  }
}

function diffRows(before, after) {
  const keys = [...new Set([...Object.keys(before || {}), ...Object.keys(after || {})])];
  return keys.map((k) => ({ key: k, then: before?.[k], now: after?.[k], changed: JSON.stringify(before?.[k]) !== JSON.stringify(after?.[k]) }));
}

function Revisions({ slug, id, current, onRestored }) {
  const [revisions, error, reload] = useLoad(() => api("GET", `/api/revisions${qs({ collection: slug, item: id, limit: 50 })}`).then((r) => r.data), [slug, id, JSON.stringify(current)]);
  const [open, setOpen] = useState(null);
  const [actionError, setActionError] = useState(null);
  const restore = async (rev) => {
    setActionError(null);
    try { await api("POST", `/api/revisions/${rev.id}/restore`); setOpen(null); onRestored(); reload(); } catch (err) { setActionError(err); }
  };
  const list = [...(revisions || [])].sort((a, b) => b.id - a.id);
  return html`<section aria-labelledby="rev-title" class="revisions">
    <h2 id="rev-title">${t("data.revisions")}</h2>
    <${ErrorBox} error=${error || actionError}/>
    <ol>${list.map((rev, i) => html`<li data-revision=${rev.id}>
      <button type="button" class="link" aria-expanded=${open === rev.id} onClick=${() => setOpen(open === rev.id ? null : rev.id)}>
        ${t("data.revision", { n: list.length - i })} · ${rev.timestamp || rev.created_at || ""} ${Object.keys(rev.delta || {}).join(", ")}</button>
      ${open === rev.id ? html`<div class="diff">
        <table class="grid"><caption>${t("data.diff")}</caption>
          <thead><tr><th scope="col">${t("schema.field_name")}</th><th scope="col">${t("data.then")}</th><th scope="col">${t("data.now")}</th></tr></thead>
          <tbody>${diffRows(rev.data, current).map((d) => html`<tr class=${d.changed ? "changed" : ""}><th scope="row">${d.key}</th><td>${fmt(d.then)}</td><td>${fmt(d.now)}</td></tr>`)}</tbody>
        </table>
        <button type="button" class="primary" onClick=${() => restore(rev)}>${t("data.restore_revision")}</button>
      </div>` : null}
    </li>`)}</ol>
    ${revisions && !revisions.length ? html`<p>${t("data.no_revisions")}</p>` : null}
  </section>`;
}

function Editor({ slug, id, collection, schema }) {
  const creating = id === "+";
  const [item, setItem] = useState(creating ? {} : null);
  const [loadError, setLoadError] = useState(null);
  const [error, setError] = useState(null);
  const [saved, setSaved] = useState(null);
  const [tick, setTick] = useState(0);
  const pk = collection.primary_key || "id";
  useEffect(() => {
    if (creating) return;
    api("GET", `/api/items/${slug}/${encodeURIComponent(id)}`).then((r) => setItem(r.data), setLoadError);
  }, [slug, id, tick]);
  const editable = collection.fields.filter((f) => !f.primary_key && !["alias", "o2m", "m2m"].includes(f.type)
    && !["date_created", "date_updated", "user_created", "user_updated"].includes(f.special));
  // o2m and m2m fields are edited through their related (or junction) collection's items.
  const related = collection.fields.filter((f) => f.relation && ["o2m", "m2m"].includes(f.relation.kind)
    && schema.some((c) => c.collection === f.relation.related_collection)
    && (f.relation.kind === "o2m" || schema.some((c) => c.collection === f.relation.junction_collection)));
  const save = async (e) => {
    e.preventDefault(); setError(null); setSaved(null);
    const body = {};
    for (const f of editable) if (item[f.field] !== undefined) body[f.field] = item[f.field];
    try {
      if (creating) { const r = await api("POST", `/api/items/${slug}`, body); navigate(`#/data/${slug}/${encodeURIComponent(r.data[pk])}`); }
      else { const r = await api("PATCH", `/api/items/${slug}/${encodeURIComponent(id)}`, body); setItem(r.data); setSaved(t("data.saved")); }
    } catch (err) { setError(err); }
  };
  const remove = async () => {
    if (!confirm(t("data.confirm_delete", { n: 1 }))) return;
    try { await api("DELETE", `/api/items/${slug}/${encodeURIComponent(id)}`); navigate(`#/data/${slug}`); } catch (err) { setError(err); }
  };
  if (loadError) return html`<${ErrorBox} error=${loadError}/><a href=${`#/data/${slug}`}>${t("data.back")}</a>`;
  if (!item) return html`<p role="status">${t("common.loading")}</p>`;
  return html`<div class="editor">
    <p><a href=${`#/data/${slug}`}>← ${slug}</a></p>
    <h1>${creating ? t("data.new_item") : t("data.item", { id })}</h1>
    <form onSubmit=${save} aria-label=${t("data.item_form")}>
      ${editable.map((f) => html`<${FieldInput} key=${f.field} field=${f} value=${item[f.field]} error=${error} schema=${schema}
        onChange=${(v) => setItem({ ...item, [f.field]: v })}/>`)}
      <${ErrorBox} error=${error}/><${Notice}>${saved}<//>
      <div class="actions">
        <button type="submit" class="primary">${t("common.save")}</button>
        ${creating ? null : html`<button type="button" class="danger" onClick=${remove}>${t("common.delete")}</button>`}
      </div>
    </form>
    ${creating || !related.length ? null : html`<section aria-labelledby="rel-title" class="relations">
      <h2 id="rel-title">${t("data.related_items")}</h2>
      ${related.map((f) => (f.relation.kind === "o2m"
        ? html`<${O2MEditor} key=${f.field} field=${f} id=${item[pk]} schema=${schema}/>`
        : html`<${M2MEditor} key=${f.field} field=${f} id=${item[pk]} schema=${schema}/>`))}
    </section>`}
    ${creating ? null : html`<${Revisions} slug=${slug} id=${id} current=${item} onRestored=${() => setTick(tick + 1)}/>`}
  </div>`;
}

function Data({ params }) {
  const [slug, id] = params;
  const [schema, error] = useLoad(() => (slug ? loadSchema() : Promise.resolve([])), [slug]);
  if (!slug) return html`<${CollectionPicker}/>`;
  if (error) return html`<${ErrorBox} error=${error}/>`;
  if (!schema) return html`<p role="status">${t("common.loading")}</p>`;
  const collection = schema.find((c) => c.collection === slug);
  if (!collection) return html`<${ErrorBox} error=${{ message: t("data.unknown_collection", { name: slug }) }}/>`;
  return id ? html`<${Editor} key=${id} slug=${slug} id=${id} collection=${collection} schema=${schema}/>`
    : html`<${Table} key=${slug} slug=${slug} collection=${collection}/>`;
}

export default page(Data);
