// The admin app's shell: sign-in gate, menu of registered pages, hash routing, lazy pages.
import { html, render, t, api, session, useState, useEffect, useRef, ErrorBox, loadSchema } from "workeros-admin";

const PAGES = JSON.parse(document.getElementById("wos-pages").textContent);
const loaded = new Map();

/** Start loading a page's module (once). */
function load(page) {
  if (!loaded.has(page.module)) loaded.set(page.module, import(page.module).catch((e) => { loaded.delete(page.module); throw e; }));
  return loaded.get(page.module);
}

function route() {
  const parts = location.hash.replace(/^#\/?/, "").split("/").filter(Boolean).map(decodeURIComponent);
  return { name: parts[0] || "", params: parts.slice(1) };
}

/** Who is signed in (with `admin`), and which pages bound to a collection they may read.
 * All of it is asked at once: the read checks go out beside /api/users/me (an admin's
 * answers are simply not used), so a first load waits one round trip, not two. */
function whoAndReadable() {
  const me = Promise.all([api("GET", "/api/users/me").then((r) => r.data),
    api("GET", "/api/roles").then((r) => r.data, () => [])]) // /api/roles answers only admins
    .then(([user, roles]) => ({ ...user, admin: !!roles.find((r) => r.id === user.role && r.admin_access) }));
  const readable = Promise.all(PAGES.map((p) => (!p.collection || p.admin_only ? Promise.resolve(!p.admin_only)
    : api("GET", `/api/items/${encodeURIComponent(p.collection)}?limit=1`).then(() => true, () => false))));
  me.catch(() => {}); // awaited by the app; a failure is shown there
  return { me, readable };
}

/** Pages bound to a collection appear only to callers who may read it. */
async function visiblePages(me, readable) {
  if (me.admin) return PAGES;
  const checks = await readable;
  return PAGES.filter((_, i) => checks[i]);
}

function PageHost({ page, params, me }) {
  const ref = useRef();
  const [error, setError] = useState(null);
  useEffect(() => {
    let cleanup = null; let live = true;
    setError(null);
    load(page).then((mod) => {
      if (!live) return;
      const result = mod.default(ref.current, { params, me, page });
      cleanup = typeof result === "function" ? result : null;
    }).catch((e) => { live && setError(e); });
    return () => { live = false; if (cleanup) cleanup(); ref.current && (ref.current.textContent = ""); };
  }, [page.module, params.join("/")]);
  useEffect(() => { document.title = `${t(page.title)} · workeros`; }, [page.name]);
  return html`<div><${ErrorBox} error=${error}/><div ref=${ref} class="page" data-page=${page.name}></div></div>`;
}

function SignInHost() {
  const ref = useRef();
  useEffect(() => {
    let cleanup = null;
    import("/admin/static/pages/signin.js").then((mod) => { cleanup = mod.default(ref.current, {}); });
    return () => cleanup && cleanup();
  }, []);
  return html`<main id="main" ref=${ref} class="signin"></main>`;
}

function App() {
  const [signedIn, setSignedIn] = useState(session.signedIn);
  const [me, setMe] = useState(null);
  const [pages, setPages] = useState(null);
  const [error, setError] = useState(null);
  const [where, setWhere] = useState(route());
  useEffect(() => session.onChange((v) => { setSignedIn(v); if (!v) { setMe(null); setPages(null); } }), []);
  useEffect(() => { const on = () => setWhere(route()); addEventListener("hashchange", on); return () => removeEventListener("hashchange", on); }, []);
  useEffect(() => {
    if (!signedIn) return;
    (async () => {
      try {
        const asked = early || whoAndReadable();
        early = null;
        const who = await asked.me;
        const visible = await visiblePages(who, asked.readable);
        setMe(who);
        setPages(visible);
      } catch (e) { setError(e); }
    })();
  }, [signedIn]);

  if (!signedIn) return html`<${SignInHost}/>`;
  if (error) return html`<main id="main" class="signin"><${ErrorBox} error=${error}/><button onClick=${() => session.signOut()}>${t("auth.sign_out")}</button></main>`;
  if (!me || !pages) return html`<p class="loading" role="status">${t("common.loading")}</p>`;
  const current = pages.find((p) => p.name === where.name) || pages[0];
  if (current && current.name !== where.name && !where.name) history.replaceState(null, "", `#/${current.name}`);
  return html`<div class="shell">
    <a class="skip" href="#main" onClick=${(e) => { e.preventDefault(); document.getElementById("main").focus(); }}>${t("common.skip")}</a>
    <header class="top">
      <span class="brand">workeros</span>
      <span class="who">${me.email}</span>
      <button type="button" onClick=${() => session.signOut()}>${t("auth.sign_out")}</button>
    </header>
    <nav aria-label=${t("nav.label")}>
      <ul>${pages.map((p) => html`<li><a href=${`#/${p.name}`} aria-current=${p === current ? "page" : undefined}>${t(p.title)}</a></li>`)}</ul>
    </nav>
    <main id="main" tabindex="-1">
      ${current ? html`<${PageHost} key=${current.name} page=${current} params=${current.name === where.name ? where.params : []} me=${me}/>`
        : html`<p>${t("nav.none")}</p>`}
    </main>
  </div>`;
}

// Signed in, the page in the address and the schema most pages start from are fetched
// while the session is checked.
let early = null;
if (session.signedIn) {
  early = whoAndReadable();
  const first = PAGES.find((p) => p.name === route().name) || PAGES[0];
  if (first) load(first).catch(() => {});
  if (!first || ["data", "schema"].includes(first.name)) loadSchema().catch(() => {});
}
render(html`<${App}/>`, document.getElementById("app"));
