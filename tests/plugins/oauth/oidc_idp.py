"""An OpenID Connect provider for the tests, on loopback: discovery, JWKS with a
real RSA key, authorization and token endpoints (PKCE S256 checked with
authlib's RFC 7636 helper, ID tokens signed with authlib's JOSE library), a
userinfo endpoint, and GitHub-style ``/user`` and ``/user/emails``. It runs in a
thread of its own with its own event loop, so one instance serves a whole test
module whatever loop each test runs on.

``idp.approve(claims)`` says who the next authorization signs in;
``idp.misbehave`` makes the next ID token wrong in one way (``nonce``, ``aud``,
``expired``, ``signature``, ``iss``).
"""

from __future__ import annotations

import asyncio
import base64
import secrets
import threading
import time
from typing import Any
from urllib.parse import urlencode

from aiohttp import web
from authlib.oauth2.rfc7636 import create_s256_code_challenge
from joserfc import jwt
from joserfc.jwk import KeySet, RSAKey

CLIENT_ID = "wos-client"
CLIENT_SECRET = "wos-client-secret"


class TestIdP:
    __test__ = False

    def __init__(self) -> None:
        self.key = RSAKey.generate_key(2048, parameters={"kid": "k1", "use": "sig", "alg": "RS256"})
        self.rogue = RSAKey.generate_key(2048, parameters={"kid": "k1", "use": "sig", "alg": "RS256"})
        self.codes: dict[str, dict[str, Any]] = {}
        self.tokens: dict[str, dict[str, Any]] = {}
        self.next_claims: dict[str, Any] = {}
        self.emails: list[dict[str, Any]] = []
        self.misbehave: str | None = None
        self.token_requests: list[dict[str, str]] = []
        self.url = ""
        self._loop: asyncio.AbstractEventLoop | None = None
        self._runner: web.AppRunner | None = None

    # -- control ---------------------------------------------------------------------
    def approve(self, **claims: Any) -> None:
        self.next_claims = claims

    @property
    def issuer(self) -> str:
        return self.url

    def settings(self, **extra: Any) -> dict[str, Any]:
        """An ``oauth.providers`` entry for this IdP as a generic OIDC issuer."""
        return {"preset": "oidc", "issuer": self.issuer, "client_id": CLIENT_ID, "client_secret": CLIENT_SECRET,
                "label": "Test IdP", **extra}

    def github_settings(self, **extra: Any) -> dict[str, Any]:
        return {"preset": "github", "client_id": CLIENT_ID, "client_secret": CLIENT_SECRET,
                "authorize_url": f"{self.url}/login/oauth/authorize",
                "token_url": f"{self.url}/login/oauth/access_token", "userinfo_url": f"{self.url}/user",
                "emails_url": f"{self.url}/user/emails", **extra}

    # -- endpoints -------------------------------------------------------------------
    async def discovery(self, request: web.Request) -> web.Response:
        return web.json_response({
            "issuer": self.issuer, "authorization_endpoint": f"{self.url}/authorize",
            "token_endpoint": f"{self.url}/token", "jwks_uri": f"{self.url}/jwks",
            "userinfo_endpoint": f"{self.url}/userinfo", "response_types_supported": ["code"],
            "subject_types_supported": ["public"], "id_token_signing_alg_values_supported": ["RS256"],
            "code_challenge_methods_supported": ["S256"]})

    async def jwks(self, request: web.Request) -> web.Response:
        return web.json_response(KeySet([self.key]).as_dict(private=False))

    async def authorize(self, request: web.Request) -> web.Response:
        q = request.query
        if q.get("client_id") != CLIENT_ID or q.get("response_type") != "code":
            return web.json_response({"error": "invalid_request"}, status=400)
        if q.get("code_challenge_method") != "S256" or not q.get("code_challenge"):
            return web.json_response({"error": "invalid_request", "error_description": "PKCE required"}, status=400)
        code = secrets.token_urlsafe(16)
        self.codes[code] = {"redirect_uri": q["redirect_uri"], "challenge": q["code_challenge"],
                            "nonce": q.get("nonce"), "claims": dict(self.next_claims), "scope": q.get("scope")}
        location = q["redirect_uri"] + "?" + urlencode({"code": code, "state": q.get("state", "")})
        return web.Response(status=302, headers={"Location": location})

    async def token(self, request: web.Request) -> web.Response:
        form = dict(await request.post())
        self.token_requests.append({k: str(v) for k, v in form.items()})
        auth = request.headers.get("Authorization", "")
        if auth.startswith("Basic "):
            cid, _, secret = base64.b64decode(auth[6:]).decode().partition(":")
        else:
            cid, secret = str(form.get("client_id", "")), str(form.get("client_secret", ""))
        if (cid, secret) != (CLIENT_ID, CLIENT_SECRET):
            return web.json_response({"error": "invalid_client"}, status=401)
        grant = self.codes.pop(str(form.get("code", "")), None)
        if form.get("grant_type") != "authorization_code" or grant is None:
            return web.json_response({"error": "invalid_grant"}, status=400)
        if form.get("redirect_uri") != grant["redirect_uri"]:
            return web.json_response({"error": "invalid_grant", "error_description": "redirect_uri"}, status=400)
        if create_s256_code_challenge(str(form.get("code_verifier", ""))) != grant["challenge"]:
            return web.json_response({"error": "invalid_grant", "error_description": "PKCE"}, status=400)
        access = secrets.token_urlsafe(16)
        self.tokens[access] = grant["claims"]
        body: dict[str, Any] = {"access_token": access, "token_type": "Bearer", "expires_in": 300}
        if grant["nonce"] is not None:
            body["id_token"] = self._id_token(grant)
        return web.json_response(body)

    def _id_token(self, grant: dict[str, Any]) -> str:
        t = int(time.time())
        claims = {"iss": self.issuer, "aud": CLIENT_ID, "iat": t, "exp": t + 300, "nonce": grant["nonce"],
                  **grant["claims"]}
        key = self.key
        fault, self.misbehave = self.misbehave, None
        if fault == "nonce":
            claims["nonce"] = "not-the-nonce"
        elif fault == "aud":
            claims["aud"] = "someone-else"
        elif fault == "expired":
            claims["iat"], claims["exp"] = t - 7200, t - 3600
        elif fault == "iss":
            claims["iss"] = "https://evil.example"
        elif fault == "signature":
            key = self.rogue
        return jwt.encode({"alg": "RS256", "kid": "k1"}, claims, key)

    def _bearer(self, request: web.Request) -> dict[str, Any] | None:
        auth = request.headers.get("Authorization", "")
        return self.tokens.get(auth[7:]) if auth.startswith("Bearer ") else None

    async def userinfo(self, request: web.Request) -> web.Response:
        claims = self._bearer(request)
        return web.json_response(claims) if claims is not None else web.json_response({}, status=401)

    async def github_user(self, request: web.Request) -> web.Response:
        claims = self._bearer(request)
        if claims is None:
            return web.json_response({}, status=401)
        return web.json_response({"id": claims["id"], "login": claims.get("login"), "name": claims.get("name"),
                                  "email": claims.get("email")})

    async def github_emails(self, request: web.Request) -> web.Response:
        if self._bearer(request) is None:
            return web.json_response({}, status=401)
        return web.json_response(self.emails)

    # -- running ---------------------------------------------------------------------
    def app(self) -> web.Application:
        app = web.Application()
        app.router.add_get("/.well-known/openid-configuration", self.discovery)
        app.router.add_get("/jwks", self.jwks)
        app.router.add_get("/authorize", self.authorize)
        app.router.add_get("/login/oauth/authorize", self.authorize)
        app.router.add_post("/token", self.token)
        app.router.add_post("/login/oauth/access_token", self.token)
        app.router.add_get("/userinfo", self.userinfo)
        app.router.add_get("/user", self.github_user)
        app.router.add_get("/user/emails", self.github_emails)
        return app

    def start(self) -> TestIdP:
        ready = threading.Event()

        def run() -> None:
            loop = asyncio.new_event_loop()
            self._loop = loop
            asyncio.set_event_loop(loop)

            async def boot() -> None:
                self._runner = web.AppRunner(self.app())
                await self._runner.setup()
                site = web.TCPSite(self._runner, "127.0.0.1", 0)
                await site.start()
                port = self._runner.addresses[0][1]
                self.url = f"http://127.0.0.1:{port}"
                ready.set()

            loop.run_until_complete(boot())
            loop.run_forever()
            loop.run_until_complete(self._runner.cleanup())  # type: ignore[union-attr]
            loop.close()

        self._thread = threading.Thread(target=run, daemon=True)
        self._thread.start()
        if not ready.wait(10):
            raise RuntimeError("test IdP did not start")
        return self

    def stop(self) -> None:
        if self._loop is not None:
            self._loop.call_soon_threadsafe(self._loop.stop)
            self._thread.join(10)
