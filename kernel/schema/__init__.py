"""Schema: the model, field types, catalog, DDL, changes, snapshots, transfer."""
