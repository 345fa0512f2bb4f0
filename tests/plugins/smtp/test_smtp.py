"""The SMTP backend against a real SMTP server on loopback (aiosmtpd)."""

from __future__ import annotations

import pytest
from workeros_smtp import CONFIG_KEYS, create

from workeros.config import Settings
from workeros.hookspecs.email import EmailMessage


def settings(**values):
    s = Settings(env={}, cli=values)
    s.declare(CONFIG_KEYS, owner="workeros-smtp")
    return s


async def test_sends_text_and_html_with_headers(smtp_inbox):
    mailer = create(settings(**smtp_inbox.settings()))
    await mailer.send(EmailMessage(to="ada@example.com", subject="Hello", text="plain body",
                                   html="<p>html body</p>", headers={"X-Flow": "test"}))
    message = smtp_inbox.last("ada@example.com")
    assert message["Subject"] == "Hello" and message["From"] == "workeros <no-reply@wos.test>"
    assert message["X-Flow"] == "test" and message["Message-ID"] and message["Date"]
    assert message["X-Envelope-To"] == "ada@example.com"
    assert smtp_inbox.text(message).strip() == "plain body"
    assert "html body" in message.get_body(preferencelist=("html",)).get_content()


async def test_header_injection_is_refused(smtp_inbox):
    mailer = create(settings(**smtp_inbox.settings()))
    with pytest.raises(ValueError):
        await mailer.send(EmailMessage(to="ada@example.com", subject="Hi\r\nBcc: eve@example.com", text="x"))
    assert smtp_inbox.messages == []


async def test_unreachable_server_raises(smtp_inbox):
    from workeros.sdk.testing import free_port

    mailer = create(settings(**{**smtp_inbox.settings(), "smtp.port": free_port(), "smtp.timeout": 2.0}))
    with pytest.raises(Exception):  # noqa: B017 (any connection error; the caller turns it into 503)
        await mailer.send(EmailMessage(to="ada@example.com", subject="x", text="x"))


def test_without_a_host_no_mailer_is_built():
    assert create(settings()) is None


async def test_is_the_apps_email_backend(make_server, smtp_inbox):
    from workeros.http.keys import REGISTRY, SERVICES

    async with make_server(**{k.replace(".", "__"): v for k, v in smtp_inbox.settings().items()}) as server:
        assert server.app[REGISTRY].get("email").name == "smtp"
        await server.app[SERVICES].mailer.send(EmailMessage(to="bob@example.com", subject="s", text="t"))
    assert smtp_inbox.last("bob@example.com")["Subject"] == "s"
