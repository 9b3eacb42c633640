"""PostgreSQL for the benchmarks: the URL with semhash's driver, a URL whose connections work in a
schema, and fresh schemas made and dropped around a run (bench search's bulk add, bench serve's
replicas)."""

from __future__ import annotations

from contextlib import contextmanager

from sqlalchemy.engine import make_url

from ..hashing.errors import ParameterError
from ..index_store.storage.records import safe_url


def postgres_url(url: str) -> str:
    """A PostgreSQL URL for SQLAlchemy with the psycopg driver (the one semhash installs)."""
    u = make_url(url)
    if u.get_backend_name() != "postgresql":
        raise ParameterError(f"--postgres needs a PostgreSQL URL (postgresql+psycopg://...), got {safe_url(url)}")
    return u.set(drivername="postgresql+psycopg").render_as_string(hide_password=False)


def in_schema(url: str, schema: str) -> str:
    """The URL with its connections' search_path set to schema: semhash's tables are made and found there."""
    return make_url(url).update_query_dict({"options": f"-csearch_path={schema}"}).render_as_string(hide_password=False)


@contextmanager
def pg_schemas(url: str, *schemas: str):
    """Fresh schemas in the URL's database for the block (dropped first if a crashed run left them,
    and after); yields an engine on the database."""
    from sqlalchemy import create_engine

    admin = create_engine(url)
    try:
        with admin.begin() as conn:
            for schema in schemas:
                conn.exec_driver_sql(f"DROP SCHEMA IF EXISTS {schema} CASCADE")
                conn.exec_driver_sql(f"CREATE SCHEMA {schema}")
        yield admin
    finally:
        with admin.begin() as conn:
            for schema in schemas:
                conn.exec_driver_sql(f"DROP SCHEMA IF EXISTS {schema} CASCADE")
        admin.dispose()
