"""The mails the accounts service sends: password reset, email verification,
magic link, one-time code, invitation. Plain text always, a small HTML part too.

Links are built from ``server.public_url`` (or the flow's own URL setting) with
the token in the query string; the token itself is never stored, only its hash.
"""

from __future__ import annotations

import html
from urllib.parse import urlencode

from workeros.hookspecs.email import EmailMessage


def link(base: str, path: str, **query: str) -> str:
    """``base`` (a public URL; a path under it when it names no page) + query."""
    url = base.rstrip("/") + path if path else base
    sep = "&" if "?" in url else "?"
    return url + sep + urlencode(query)


def _html(paragraphs: list[str], url: str | None = None, label: str | None = None) -> str:
    body = "".join(f"<p>{html.escape(p)}</p>" for p in paragraphs)
    if url:
        body += f'<p><a href="{html.escape(url, quote=True)}">{html.escape(label or url)}</a></p>'
    return f"<!doctype html><html><body>{body}</body></html>"


def _message(to: str, subject: str, lines: list[str], url: str | None = None, label: str | None = None) -> EmailMessage:
    text = "\n\n".join([*lines, *([url] if url else [])]) + "\n"
    return EmailMessage(to=to, subject=subject, text=text, html=_html(lines, url, label))


def password_reset(to: str, url: str, minutes: int) -> EmailMessage:
    return _message(to, "Reset your password", [
        "Someone asked to reset the password of this account.",
        f"Open the link below within {minutes} minutes to choose a new password. "
        "If it was not you, ignore this mail: your password stays as it is.",
    ], url, "Choose a new password")


def verify_email(to: str, url: str, minutes: int) -> EmailMessage:
    return _message(to, "Confirm your email address", [
        f"Open the link below within {minutes} minutes to confirm this address.",
    ], url, "Confirm my address")


def magic_link(to: str, url: str, minutes: int) -> EmailMessage:
    return _message(to, "Your sign-in link", [
        f"Open the link below within {minutes} minutes to sign in. It works once.",
        "If you did not ask for it, ignore this mail.",
    ], url, "Sign in")


def one_time_code(to: str, code: str, minutes: int) -> EmailMessage:
    return _message(to, f"Your sign-in code: {code}", [
        f"Your sign-in code is {code}. It expires in {minutes} minutes and works once.",
        "If you did not ask for it, ignore this mail.",
    ])


def invitation(to: str, url: str, minutes: int) -> EmailMessage:
    return _message(to, "You are invited", [
        f"You have been invited to create an account. The link below works once, for {minutes} minutes.",
    ], url, "Create my account")
