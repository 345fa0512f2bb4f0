"""SMTP email backend (aiosmtplib): password-reset, verification, magic-link,
one-time-code and invitation mails go out through it.

Configure ``smtp.host`` (unset: no mail is sent and mail-sending features answer
503); ``smtp.security`` is ``auto`` (STARTTLS when the server offers it),
``starttls`` (required), ``tls`` (implicit TLS, usually port 465) or ``none``.
"""

from __future__ import annotations

import email.utils
from email.message import EmailMessage as MimeMessage
from typing import Any

from workeros.hookspecs import hookimpl
from workeros.hookspecs.email import EmailBackend, EmailMessage
from workeros.hookspecs.lifecycle import ConfigKey

CONFIG_KEYS = (
    ConfigKey("smtp.host", "str", None, "SMTP server host (unset: no mail is sent)"),
    ConfigKey("smtp.port", "int", 587, "SMTP server port"),
    ConfigKey("smtp.username", "str", None, "SMTP user name (unset: no authentication)"),
    ConfigKey("smtp.password", "str", None, "SMTP password", secret=True),
    ConfigKey("smtp.security", "str", "auto", "auto (STARTTLS if offered), starttls, tls (implicit) or none",
              choices=("auto", "starttls", "tls", "none")),
    ConfigKey("smtp.from", "str", "workeros <no-reply@localhost>", "From address of every mail"),
    ConfigKey("smtp.timeout", "float", 10.0, "Seconds to wait for the SMTP server"),
)


def to_mime(message: EmailMessage, sender: str) -> MimeMessage:
    """The message as MIME: text, plus an HTML alternative when given. Header
    values with line breaks are refused by the email package (no injection)."""
    mime = MimeMessage()
    mime["From"] = sender
    mime["To"] = message.to
    mime["Subject"] = message.subject
    mime["Date"] = email.utils.formatdate(localtime=False, usegmt=True)
    mime["Message-ID"] = email.utils.make_msgid(domain=email.utils.parseaddr(sender)[1].rpartition("@")[2] or None)
    for name, value in message.headers.items():
        mime[name] = value
    mime.set_content(message.text)
    if message.html:
        mime.add_alternative(message.html, subtype="html")
    return mime


class SmtpMailer:
    """Sends each message in its own SMTP connection."""

    def __init__(self, settings: Any) -> None:
        self.host: str = settings["smtp.host"]
        self.port: int = settings["smtp.port"]
        self.username: str | None = settings["smtp.username"]
        self.password: str | None = settings["smtp.password"]
        self.security: str = settings["smtp.security"]
        self.sender: str = settings["smtp.from"]
        self.timeout: float = settings["smtp.timeout"]

    async def send(self, message: EmailMessage) -> None:
        import aiosmtplib

        options: dict[str, Any] = {"hostname": self.host, "port": self.port, "timeout": self.timeout}
        if self.security == "tls":
            options["use_tls"] = True
        elif self.security == "starttls":
            options["start_tls"] = True
        elif self.security == "none":
            options["start_tls"] = False
        if self.username:
            options["username"] = self.username
            options["password"] = self.password or ""
        await aiosmtplib.send(to_mime(message, self.sender), **options)


def create(settings: Any) -> SmtpMailer | None:
    if not settings["smtp.host"]:
        return None
    return SmtpMailer(settings)


def _check() -> str | None:
    try:
        import aiosmtplib  # noqa: F401
    except ImportError:
        return "aiosmtplib is not installed (pip install workeros-smtp)"
    return None


@hookimpl
def workeros_register_config_keys() -> list[ConfigKey]:
    return list(CONFIG_KEYS)


@hookimpl
def workeros_register_email_backends() -> list[EmailBackend]:
    # Below the default priority: an installed third-party backend wins auto-selection.
    return [EmailBackend(name="smtp", factory=create, check=_check, priority=-1,
                         description="SMTP through aiosmtplib")]
