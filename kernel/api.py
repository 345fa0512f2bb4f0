"""The published plugin API: everything a plugin may use from the kernel.

Plugins import from here, from :mod:`workeros.hookspecs` (hook markers, specs and
the typed entries registration hooks return) and from :mod:`workeros.sdk` —
nothing else of the ``workeros`` package (an import-linter contract checks this
for every first-party plugin). What is here is documented in
``docs/internals.md`` and kept stable across minor releases; the modules behind
these names may move.

Example::

    from workeros.api import Forbidden, Query, accountability, ok, services

    async def handler(request):
        rows, meta = await services(request).items.query(accountability(request), "posts", Query(limit=5))
        return ok(rows, meta=meta)
"""

# Grouped by area on purpose (the order documents the API), not sorted.
# ruff: noqa: I001

from __future__ import annotations

# -- who is calling, and the services ------------------------------------------------------
from workeros.accountability import Accountability
from workeros.background import Background

# -- accounts (for auth providers) --------------------------------------------------------
from workeros.accounts import mail
from workeros.accounts.accounts_service import CSRF_COOKIE, Session
from workeros.accounts.directory import ExternalIdentity, identity_login
from workeros.accounts.tokens import keyed_hash, numeric_code, random_token
from workeros.accounts.users import normalize_email

# -- audit ----------------------------------------------------------------------------------
from workeros.db import activity
from workeros.audit.activity_reads import list_activity
from workeros.audit.revisions import parse_time

# -- events and buses -----------------------------------------------------------------------
from workeros.bus.events import ITEMS, PERMISSIONS, SCHEMA, Events, ItemEvent
from workeros.bus.outbox import Outbox
from workeros.bus.subscribers import Subscribers
from workeros.clock import now

# -- configuration --------------------------------------------------------------------------
from workeros.config import Settings, mask_url, setting_or

# -- storage (dialect plugins) --------------------------------------------------------------
from workeros.db.database import (
    AFTER_COMMIT_KEY,
    Database,
    PreparedCache,
    PreparedStatement,
    run_callbacks,
    schema_race,
)
from workeros.db.tables.accounts import one_time_tokens, users
from workeros.db.tables.bus import bus_messages

# -- errors (each becomes the contract's envelope) -----------------------------------------
from workeros.errors import (
    READ_ONLY,
    BadGateway,
    Conflict,
    Forbidden,
    FunctionError,
    FunctionTimeout,
    Internal,
    InvalidCredentials,
    InvalidPayload,
    InvalidQuery,
    MethodNotAllowed,
    NotFound,
    PayloadTooLarge,
    RangeNotSatisfiable,
    RateLimited,
    ServiceUnavailable,
    StartupError,
    TokenExpired,
    UnsupportedMediaType,
    WorkerosError,
)

# -- the HTTP layer -------------------------------------------------------------------------
from workeros.http.app import create_app, prepare
from workeros.http.inprocess import InProcessApp
from workeros.http.keys import (
    ACCOUNTABILITY,
    DRAINING,
    OWN_CREDENTIALS,
    PLUGINS,
    REGISTRY,
    REQUEST_ID,
    SERVICES,
    SETTINGS,
)
from workeros.http.web import (
    accountability,
    add_admin_resource,
    changes_nothing,
    error_body,
    error_response,
    json_response,
    no_content,
    ok,
    parse_page,
    read_admin_json,
    read_json,
    request_id,
    services,
    streams_body,
)

from workeros.http.sessions import (
    clear_session_cookies,
    client,
    login_mode,
    optional_json,
    read_object,
    session_redirect,
    session_response,
    wants_cookies,
)

# -- items ----------------------------------------------------------------------------------
from workeros.items.query import Query, parse_query, query_from_mapping
from workeros.items.writes import Writes

# -- outbound network -----------------------------------------------------------------------
from workeros.outbound import FetchResult, Outbound, OutboundError, OutboundRefused, address_allowed

# -- the filter language --------------------------------------------------------------------
from workeros.permissions import Variables, compile_filter, match_filter, parse_filter
from workeros.permissions.data_match import check_data_filter, match_data
from workeros.plugins import Plugins, await_me_maybe

# -- realtime streams (transports) ----------------------------------------------------------
from workeros.realtime.hub import Credential, Stream, authenticate_token, bearer_token

# -- the data model -------------------------------------------------------------------------
from workeros.schema import snapshot
from workeros.schema.transfer import export_archive, import_archive
from workeros.schema.field_types import (
    INT32,
    INT64,
    TYPES,
    CoercionError,
    FieldType,
    UTCDateTime,
    UUIDString,
    coerce,
)
from workeros.schema.model import Collection, Field, Relation, Schema
from workeros.serialize import dumps, dumps_str, jsonable, loads
from workeros.services import Services, open_services

__all__ = [
    "ACCOUNTABILITY", "AFTER_COMMIT_KEY", "DRAINING", "OWN_CREDENTIALS", "CSRF_COOKIE", "INT32", "INT64", "ITEMS",
    "PERMISSIONS", "PLUGINS",
    "REGISTRY", "REQUEST_ID", "SCHEMA", "SERVICES", "SETTINGS", "TYPES",
    "ExternalIdentity", "identity_login",
    "Accountability", "Background", "BadGateway", "CoercionError", "Collection", "Conflict", "Database", "Events", "PreparedCache", "PreparedStatement",
    "FetchResult", "Field", "FieldType", "Forbidden", "FunctionError", "InProcessApp", "FunctionTimeout", "Internal",
    "InvalidCredentials", "InvalidPayload", "InvalidQuery", "ItemEvent", "MethodNotAllowed", "NotFound", "Outbound",
    "OutboundError", "OutboundRefused", "Outbox", "PayloadTooLarge", "Plugins", "Query", "RangeNotSatisfiable",
    "RateLimited", "Relation", "Schema", "ServiceUnavailable", "Services", "Session", "Settings", "Subscribers", "StartupError",
    "TokenExpired", "UTCDateTime", "UUIDString", "UnsupportedMediaType", "Variables", "WorkerosError", "Writes",
    "accountability", "activity", "add_admin_resource", "clear_session_cookies", "client", "optional_json", "read_object", "session_redirect",
    "session_response", "wants_cookies", "login_mode", "address_allowed", "authenticate_token", "await_me_maybe", "bearer_token",
    "bus_messages", "check_data_filter", "coerce", "compile_filter", "create_app", "dumps", "dumps_str", "error_body",
    "error_response", "export_archive", "import_archive", "json_response", "jsonable", "keyed_hash", "list_activity", "loads", "mail", "mask_url",
    "match_data", "match_filter", "no_content", "normalize_email", "now", "numeric_code", "ok", "one_time_tokens",
    "open_services", "parse_filter", "parse_page", "parse_query", "parse_time", "prepare", "random_token", "read_admin_json",
    "read_json", "request_id", "run_callbacks", "schema_race", "services", "setting_or", "snapshot", "users",
    "query_from_mapping",
    "Credential", "Stream", "READ_ONLY", "changes_nothing", "streams_body",
]
