"""The store: SQL tables, schema versions and migrations, the SQLAlchemy store and the sqlite3 reader."""
