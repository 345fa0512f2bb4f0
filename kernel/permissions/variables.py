"""Filter variables: ``$CURRENT_USER`` / ``$user.id``, ``$CURRENT_ROLE`` /
``$user.role``, ``$user.<field>``, ``$NOW`` and ``$NOW(<offset>)``.

A filter is parsed once (and cached per role), so variables stay symbolic in
the parsed tree and take their values when the filter is compiled or matched,
from a :class:`Variables` built for the caller.
"""

from __future__ import annotations

import datetime as dt
import re
from dataclasses import dataclass, field
from typing import Any

from workeros.accountability import Accountability
from workeros.errors import InvalidQuery

_NOW = re.compile(r"^\$NOW(?:\(\s*([+-]?)\s*(\d{1,6})\s*([a-z]+?)s?\s*\))?$")
_UNITS = {"second": 1, "minute": 60, "hour": 3600, "day": 86400, "week": 7 * 86400}
_MONTH_UNITS = {"month": 1, "year": 12}
_USER_FIELD = re.compile(r"^\$user\.([a-z][a-z0-9_]{0,63})$")
#: Columns of wos_users a filter may name; secrets never.
USER_FIELDS = frozenset({"id", "email", "role", "status", "first_name", "last_name", "email_verified",
                         "created_at", "last_login_at"})


@dataclass(frozen=True)
class Var:
    """A variable in a parsed filter."""

    name: str  # "user", "role", "now", or "user.<field>"
    months: int = 0
    seconds: int = 0

    def __repr__(self) -> str:
        return f"Var({self.name})"


def is_variable_syntax(value: Any) -> bool:
    """Strings that look like variables: ``$`` then an uppercase name, or ``$user.``."""
    return isinstance(value, str) and (value.startswith("$user.") or bool(re.match(r"^\$[A-Z_]+\b", value)))


def parse_variable(value: str) -> Var:
    if value in ("$CURRENT_USER", "$user.id"):
        return Var("user")
    if value in ("$CURRENT_ROLE", "$user.role"):
        return Var("role")
    m = _NOW.fullmatch(value)
    if m:
        sign, amount, unit = m.groups()
        if amount is None:
            return Var("now")
        n = int(amount) * (-1 if sign == "-" else 1)
        if unit in _UNITS:
            return Var("now", seconds=n * _UNITS[unit])
        if unit in _MONTH_UNITS:
            return Var("now", months=n * _MONTH_UNITS[unit])
        raise InvalidQuery(f"Unknown unit {unit!r} in {value[:40]!r} (seconds, minutes, hours, days, weeks, "
                           "months, years)")
    m = _USER_FIELD.fullmatch(value)
    if m:
        if m.group(1) not in USER_FIELDS:
            raise InvalidQuery(f"Unknown variable {value[:80]!r}: users have no readable field {m.group(1)!r}")
        return Var("user." + m.group(1))
    raise InvalidQuery(f"Unknown variable {value[:80]!r}")


def _add_months(when: dt.datetime, months: int) -> dt.datetime:
    year, month = divmod(when.month - 1 + months, 12)
    year += when.year
    month += 1
    for day in (when.day, 30, 29, 28):
        try:
            return when.replace(year=year, month=month, day=day)
        except ValueError:
            continue
    raise InvalidQuery("Date offset out of range")


@dataclass(frozen=True)
class Variables:
    user: str | None = None
    role: str | None = None
    user_fields: dict[str, Any] = field(default_factory=dict)
    now: dt.datetime = field(default_factory=lambda: dt.datetime.now(dt.UTC))

    @classmethod
    def for_accountability(cls, acc: Accountability | None, now: dt.datetime | None = None) -> Variables:
        if acc is None:
            return cls(now=now or dt.datetime.now(dt.UTC))
        return cls(user=acc.user, role=acc.role, user_fields=dict(acc.user_fields or {}),
                   now=now or dt.datetime.now(dt.UTC))

    def value(self, var: Var) -> Any:
        if var.name == "user":
            return self.user
        if var.name == "role":
            return self.role
        if var.name == "now":
            when = self.now + dt.timedelta(seconds=var.seconds)
            try:
                return _add_months(when, var.months) if var.months else when
            except OverflowError:
                raise InvalidQuery("Date offset out of range") from None
        return self.user_fields.get(var.name[len("user."):])
