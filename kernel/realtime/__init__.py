"""Realtime: the hub that fans item events out to subscribers."""
