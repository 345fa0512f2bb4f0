"""workeros: the backend you compose from plugins."""

from __future__ import annotations

from workeros.hookspecs import hookimpl

__version__ = "0.1.0"

__all__ = ["__version__", "hookimpl"]
