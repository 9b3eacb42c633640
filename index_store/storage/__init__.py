"""The store: SQL tables, schema versions and migrations, the one check of new items, the
SQLAlchemy store with its bulk writers, and the sqlite3 reader."""
