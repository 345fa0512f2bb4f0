"""Outbound email backends (SMTP; others such as an HTTP API can be added)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Protocol

from . import hookspec
from ._entries import Backend


@dataclass(frozen=True)
class EmailMessage:
    """One message to send. ``html`` is optional; ``text`` is always sent."""

    to: str
    subject: str
    text: str
    html: str | None = None
    headers: dict[str, str] = field(default_factory=dict)


class Mailer(Protocol):
    async def send(self, message: EmailMessage) -> None:
        """Deliver the message or raise; the caller decides whether to retry."""


@dataclass(frozen=True)
class EmailBackend(Backend):
    """An email backend. ``factory(settings) -> Mailer`` (may be awaitable)."""


@hookspec
def workeros_register_email_backends() -> Sequence[EmailBackend]:
    """Register outbound email backends.

    Called once per boot. The backend named by ``email.backend`` is used; without it
    the available backend with the highest priority. With none available, features
    that send mail (magic links, password reset) answer 503 ``SERVICE_UNAVAILABLE``.

    :return: email backend entries. Not firstresult.

    .. versionadded:: 0.1

    Example::

        @hookimpl
        def workeros_register_email_backends():
            return [EmailBackend(name="smtp", factory=SmtpMailer.from_settings)]
    """
