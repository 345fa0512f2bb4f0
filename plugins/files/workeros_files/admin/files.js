// The files library of the admin app (contributed by workeros-files through
// workeros_register_admin_pages): upload with progress (TUS for large files), thumbnails
// through the asset transform URL, folders, search, title edits and deletes.
import {
  html, page, t, api, qs, useState, useLoad, Input, ErrorBox, Notice, Dialog, uploadFile, AssetImage, TUS_ABOVE, fmt,
} from "workeros-admin";

const THUMB = { width: 160, height: 160, fit: "cover", format: "webp" };
const PER_PAGE = 48;

function size(bytes) {
  if (bytes === null || bytes === undefined) return "—";
  const units = ["B", "KiB", "MiB", "GiB"];
  let n = bytes; let i = 0;
  while (n >= 1024 && i < units.length - 1) { n /= 1024; i++; }
  return `${i ? n.toFixed(1) : n} ${units[i]}`;
}

export const isImage = (file) => !!file && /^image\/(png|jpeg|gif|webp|avif|tiff|bmp)$/.test(file.type || "");

/** Files in the middle of uploading, with their progress. */
function Uploads({ items }) {
  if (!items.length) return null;
  return html`<ul class="uploads" aria-label=${t("files.uploads")}>
    ${items.map((u) => html`<li key=${u.id} data-upload=${u.name}>
      <label for=${`up-${u.id}`}>${u.name} ${u.tus ? html`<small>(${t("files.resumable")})</small>` : null}</label>
      <progress id=${`up-${u.id}`} max=${u.total || 1} value=${u.done ? u.total || 1 : u.sent}>${Math.round((100 * u.sent) / (u.total || 1))} %</progress>
      ${u.error ? html`<${ErrorBox} error=${u.error}/>` : u.done ? html`<span>${t("files.uploaded")}</span>` : null}
    </li>`)}
  </ul>`;
}

function FileDetails({ file, folders, onClose, onChanged }) {
  const [title, setTitle] = useState(file.title || "");
  const [folder, setFolder] = useState(file.folder || "");
  const [error, setError] = useState(null);
  const save = async (e) => {
    e.preventDefault(); setError(null);
    try { await api("PATCH", `/api/files/${file.id}`, { title: title || null, folder: folder || null }); onChanged(); onClose(); }
    catch (err) { setError(err); }
  };
  const remove = async () => {
    if (!confirm(t("files.confirm_delete", { name: file.filename_download }))) return;
    try { await api("DELETE", `/api/files/${file.id}`); onChanged(); onClose(); } catch (err) { setError(err); }
  };
  return html`<${Dialog} title=${file.filename_download} onClose=${onClose}>
    ${isImage(file) ? html`<${AssetImage} id=${file.id} params=${{ width: 480, height: 320, fit: "inside", format: "webp" }} alt=${file.title || file.filename_download} class="preview"/>` : null}
    <dl class="facts">
      <dt>${t("files.type")}</dt><dd>${fmt(file.type)}</dd>
      <dt>${t("files.size")}</dt><dd>${size(file.filesize)}</dd>
      ${file.width ? html`<dt>${t("files.dimensions")}</dt><dd>${file.width} × ${file.height}</dd>` : null}
      <dt>${t("files.checksum")}</dt><dd class="mono">${fmt(file.checksum)}</dd>
      <dt>${t("files.uploaded_on")}</dt><dd>${fmt(file.uploaded_on)}</dd>
    </dl>
    <form onSubmit=${save} aria-label=${t("files.edit")}>
      <${Input} label=${t("files.title_field")} name="title" value=${title} onInput=${setTitle} error=${error}/>
      <div class="field"><label for="file-folder">${t("files.folder")}</label>
        <select id="file-folder" name="folder" value=${folder} onChange=${(e) => setFolder(e.target.value)}>
          <option value="">${t("files.no_folder")}</option>
          ${folders.map((f) => html`<option value=${f.id}>${f.name}</option>`)}
        </select></div>
      <${ErrorBox} error=${error}/>
      <div class="actions">
        <button type="submit" class="primary">${t("common.save")}</button>
        <button type="button" class="danger" onClick=${remove}>${t("common.delete")}</button>
      </div>
    </form>
  <//>`;
}

function Folders({ folders, current, onPick, onCreated }) {
  const [name, setName] = useState("");
  const [error, setError] = useState(null);
  const create = async (e) => {
    e.preventDefault(); setError(null);
    try { const r = await api("POST", "/api/folders", { name }); setName(""); onCreated(r.data); } catch (err) { setError(err); }
  };
  return html`<aside aria-label=${t("files.folders")}>
    <h2>${t("files.folders")}</h2>
    <ul class="list">
      <li><a href="#/files" aria-current=${!current ? "page" : undefined} onClick=${() => onPick(null)}>${t("files.all")}</a></li>
      ${folders.map((f) => html`<li><a href=${`#/files/${f.id}`} aria-current=${current === f.id ? "page" : undefined}>${f.name}</a></li>`)}
    </ul>
    <form onSubmit=${create} class="inline-form" aria-label=${t("files.new_folder")}>
      <${Input} label=${t("files.new_folder")} name="name" value=${name} onInput=${setName} error=${error} required/>
      <button type="submit">${t("files.create_folder")}</button>
    </form>
    <${ErrorBox} error=${error && error.field !== "name" ? error : null}/>
  </aside>`;
}

function Files({ params }) {
  const folder = params[0] || null;
  const [search, setSearch] = useState("");
  const [query, setQuery] = useState("");
  const [pageNo, setPageNo] = useState(1);
  const [uploads, setUploads] = useState([]);
  const [open, setOpen] = useState(null);
  const [folders, foldersError, reloadFolders] = useLoad(() => api("GET", "/api/folders?sort=name&limit=-1").then((r) => r.data).catch(() => []));
  const [result, error, reload] = useLoad(() => api("GET", `/api/files${qs({
    sort: "-uploaded_on", limit: PER_PAGE, page: pageNo, search: query, meta: "filter_count",
    filter: folder ? { folder: { _eq: folder } } : null })}`), [folder, query, pageNo]);
  const files = result?.data || [];
  const total = result?.meta?.filter_count ?? files.length;
  const pages = Math.max(1, Math.ceil(total / PER_PAGE));

  const start = async (list) => {
    const batch = [...list].map((file, i) => ({ id: `${Date.now()}-${i}`, file, name: file.name, sent: 0, total: file.size,
      tus: file.size > TUS_ABOVE, done: false, error: null }));
    setUploads((now) => [...batch, ...now]);
    const patch = (id, change) => setUploads((now) => now.map((u) => (u.id === id ? { ...u, ...change } : u)));
    await Promise.all(batch.map(async (u) => {
      try {
        await uploadFile(u.file, { folder, onProgress: (sent, all) => patch(u.id, { sent, total: all }) });
        patch(u.id, { done: true, sent: u.total });
      } catch (err) { patch(u.id, { error: err }); }
    }));
    reload();
  };
  const onDrop = (e) => { e.preventDefault(); if (e.dataTransfer?.files?.length) start(e.dataTransfer.files); };

  return html`<section aria-labelledby="files-title" onDragOver=${(e) => e.preventDefault()} onDrop=${onDrop}>
    <h1 id="files-title">${t("files.title")}</h1>
    <div class="split">
      <${Folders} folders=${folders || []} current=${folder} onPick=${() => setPageNo(1)} onCreated=${reloadFolders}/>
      <div class="content">
        <div class="toolbar">
          <div class="field upload">
            <label for="file-upload" class="button primary">${t("files.upload")}</label>
            <input id="file-upload" type="file" multiple class="sr-file" onChange=${(e) => { start(e.target.files); e.target.value = ""; }}/>
          </div>
          <form role="search" onSubmit=${(e) => { e.preventDefault(); setQuery(search); setPageNo(1); }}>
            <${Input} label=${t("files.search")} type="search" name="search" value=${search} onInput=${setSearch}/>
            <button type="submit">${t("files.search")}</button>
          </form>
        </div>
        <p class="hint">${t("files.drop_hint")}</p>
        <${Uploads} items=${uploads}/>
        <${ErrorBox} error=${error || foldersError}/>
        <ul class="file-grid">${files.map((f) => html`<li key=${f.id} data-file=${f.filename_download}>
          <button type="button" class="tile" onClick=${() => setOpen(f)} aria-label=${t("files.open", { name: f.title || f.filename_download })}>
            ${isImage(f) ? html`<${AssetImage} id=${f.id} params=${THUMB} alt="" class="thumb" width="160" height="160"/>`
              : html`<span class="thumb file-type" aria-hidden="true">${(f.type || "?").split("/").pop()}</span>`}
            <span class="name">${f.title || f.filename_download}</span>
            <small>${size(f.filesize)}</small>
          </button>
        </li>`)}</ul>
        ${result && !files.length ? html`<${Notice}>${t("files.none")}<//>` : null}
        <nav class="pager" aria-label=${t("data.paging")}>
          <button type="button" disabled=${pageNo <= 1} onClick=${() => setPageNo(pageNo - 1)}>${t("data.prev")}</button>
          <span>${t("data.page_of", { page: pageNo, pages, total })}</span>
          <button type="button" disabled=${pageNo >= pages} onClick=${() => setPageNo(pageNo + 1)}>${t("data.next")}</button>
        </nav>
      </div>
    </div>
    ${open ? html`<${FileDetails} file=${open} folders=${folders || []} onClose=${() => setOpen(null)} onChanged=${reload}/>` : null}
  </section>`;
}

export default page(Files);
