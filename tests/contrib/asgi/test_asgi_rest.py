"""The held REST tests, run through uvicorn and the ASGI adapter (this
folder's ``api`` fixture), on both dialects."""

from __future__ import annotations

from tests.plugins.rest.test_items import *  # noqa: F403
from tests.plugins.rest.test_items_permissions import *  # noqa: F403
