"""One permission language everywhere: the JSON of a role's rule is the JSON a
client sends as ``?filter``. :func:`parse_filter` checks it once;
:func:`compile_filter` turns it into SQL; :func:`match_filter` evaluates it
against a row in this process (realtime, validation) with the same answers.
:class:`PermissionsService` holds roles and their rules."""

from workeros.permissions.compile import compile_filter, compile_filter_params, filter_shape
from workeros.permissions.match import match_filter
from workeros.permissions.parse import Filter, FilterLimits, parse_filter
from workeros.permissions.permissions_service import Access, PermissionsService, Rule
from workeros.permissions.variables import Variables

__all__ = ["Access", "Filter", "FilterLimits", "PermissionsService", "Rule", "Variables", "compile_filter",
           "compile_filter_params", "filter_shape", "match_filter", "parse_filter"]
