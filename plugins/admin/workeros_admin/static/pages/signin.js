// Sign-in and first run: password with the TOTP prompt, create-account (the very first
// account becomes admin), and the other installed providers from GET /api/auth/providers.
import { html, page, t, api, session, useState, useLoad, Input, ErrorBox, Notice } from "workeros-admin";

function PasswordForm({ mode }) {
  const [email, setEmail] = useState("");
  const [password, setPassword] = useState("");
  const [otp, setOtp] = useState("");
  const [needOtp, setNeedOtp] = useState(false);
  const [error, setError] = useState(null);
  const [busy, setBusy] = useState(false);
  const submit = async (e) => {
    e.preventDefault(); setBusy(true); setError(null);
    try {
      if (mode === "signup") await api("POST", "/api/auth/sign-up", { email, password }, { auth: false });
      const body = { email, password, mode: "json" };
      if (needOtp) body.otp = otp;
      session.set((await api("POST", "/api/auth/login", body, { auth: false })).data);
    } catch (err) {
      if (err.extensions?.reason === "otp_required") { setNeedOtp(true); setError(null); }
      else setError(err);
    } finally { setBusy(false); }
  };
  return html`<form onSubmit=${submit} aria-label=${mode === "signup" ? t("auth.sign_up") : t("auth.sign_in")}>
    <${Input} label=${t("auth.email")} name="email" type="email" value=${email} onInput=${setEmail} error=${error} autocomplete="username" required/>
    <${Input} label=${t("auth.password")} name="password" type="password" value=${password} onInput=${setPassword} error=${error}
      autocomplete=${mode === "signup" ? "new-password" : "current-password"} required/>
    ${needOtp ? html`<${Input} label=${t("auth.otp")} name="otp" value=${otp} onInput=${setOtp} inputmode="numeric" autocomplete="one-time-code" autofocus/>
      <${Notice}>${t("auth.otp_needed")}<//>` : null}
    <${ErrorBox} error=${error}/>
    <button type="submit" class="primary" disabled=${busy}>${mode === "signup" ? t("auth.create_account") : t("auth.sign_in")}</button>
  </form>`;
}

function CodeForm({ provider }) {
  // magic-link mails a link; otp mails a code that is typed here.
  const [email, setEmail] = useState("");
  const [code, setCode] = useState("");
  const [sent, setSent] = useState(false);
  const [error, setError] = useState(null);
  const isLink = provider.name === "magic-link";
  const request = async (e) => {
    e.preventDefault(); setError(null);
    try { await api("POST", isLink ? "/api/auth/magic-link" : "/api/auth/otp/request", { email }, { auth: false }); setSent(true); }
    catch (err) { setError(err); }
  };
  const verify = async (e) => {
    e.preventDefault(); setError(null);
    try { session.set((await api("POST", "/api/auth/otp/verify", { email, code, mode: "json" }, { auth: false })).data); }
    catch (err) { setError(err); }
  };
  return html`<form onSubmit=${sent && !isLink ? verify : request} aria-label=${t(`auth.provider.${provider.name}`)}>
    <h2>${t(`auth.provider.${provider.name}`)}</h2>
    <${Input} label=${t("auth.email")} type="email" value=${email} onInput=${setEmail} required/>
    ${sent && !isLink ? html`<${Input} label=${t("auth.code")} value=${code} onInput=${setCode} inputmode="numeric"/>` : null}
    ${sent && isLink ? html`<${Notice}>${t("auth.link_sent")}<//>` : null}
    <${ErrorBox} error=${error}/>
    <button type="submit">${sent && !isLink ? t("auth.sign_in") : isLink ? t("auth.send_link") : t("auth.send_code")}</button>
  </form>`;
}

function SignIn() {
  const [mode, setMode] = useState("signin");
  const [providers, error] = useLoad(() => api("GET", "/api/auth/providers", undefined, { auth: false }).then((r) => r.data));
  const others = (providers || []).filter((p) => p.name !== "password" && ["magic-link", "otp"].includes(p.name));
  const hasPassword = !providers || providers.some((p) => p.name === "password");
  return html`<div class="card">
    <h1>workeros</h1>
    <${ErrorBox} error=${error}/>
    <div role="tablist" class="tabs" aria-label=${t("auth.mode")}>
      <button role="tab" aria-selected=${mode === "signin"} onClick=${() => setMode("signin")}>${t("auth.sign_in")}</button>
      <button role="tab" aria-selected=${mode === "signup"} onClick=${() => setMode("signup")}>${t("auth.sign_up")}</button>
    </div>
    ${mode === "signup" ? html`<p class="hint">${t("auth.first_admin")}</p>` : null}
    ${hasPassword ? html`<${PasswordForm} key=${mode} mode=${mode}/>` : null}
    ${mode === "signin" ? others.map((p) => html`<${CodeForm} provider=${p}/>`) : null}
  </div>`;
}

export default page(SignIn);
