"""Storage: the database handle, system tables, migrations."""
