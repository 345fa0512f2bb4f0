// The admin app's shell: sign-in gate, menu of registered pages, hash routing, lazy pages.
import { html, render, t, api, session, useState, useEffect, useRef, ErrorBox } from "workeros-admin";

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

/** Pages bound to a collection appear only to callers who may read it. */
async function visiblePages(me) {
  if (me.admin) return PAGES;
  const checks = await Promise.all(PAGES.map(async (p) => {
    if (p.admin_only) return false;
    if (!p.collection) return true;
    try { await api("GET", `/api/items/${encodeURIComponent(p.collection)}?limit=1`); return true; } catch { return false; }
  }));
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
        // Both at once; /api/roles answers only admins.
        const [user, roles] = await Promise.all([api("GET", "/api/users/me").then((r) => r.data),
          api("GET", "/api/roles").then((r) => r.data, () => [])]);
        const admin = !!roles.find((r) => r.id === user.role && r.admin_access);
        const who = { ...user, admin };
        setMe(who);
        setPages(await visiblePages(who));
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

// Signed in, the page in the address is fetched while the session is checked.
if (session.signedIn) { const first = PAGES.find((p) => p.name === route().name); if (first) load(first).catch(() => {}); }
render(html`<${App}/>`, document.getElementById("app"));
