"""Audit: the activity log and revisions (and restore)."""
