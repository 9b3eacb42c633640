"""semhash over HTTP: a JSON API (FastAPI, OpenAPI at /docs) and a browse page at /.

    app = create_app("items.db")                   # every index in the store, or names=["mnist"]
    uvicorn.run(app)                               # launcher.serve: what `semhash serve items.db` does

Each request reads the index's row from SQL (one small SELECT) and reloads the derived structures
when its (uid, state) is not theirs (index.py), so several replicas serving one PostgreSQL store see
each other's additions, and an index dropped and built again under its name is served as the new
one. A server of every index of its store (no names given) lists and serves the store as it is
now: an index built after the start is there, a dropped one is gone (404). Bad requests are 4xx
with a one-line `detail` (the status from the error's type, `SemhashError.http_status`). The
bodies are in models.py, the routes in routes.py, starting servers in launcher.py.
"""

from __future__ import annotations

import threading
from contextlib import asynccontextmanager
from pathlib import Path

import numpy as np
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import HTMLResponse, JSONResponse
from sqlalchemy.exc import SQLAlchemyError

from ...hashing import __version__
from ...hashing.errors import IndexNotFound, ItemNotFound, SemhashError, translate
from ..index import Index
from ..storage.store import Store, StoreError
from .guard import Gate, Guard, allowed_hosts, is_loopback
from .routes import router

# what the exception handler answers for: ours, and the foreign ones `translate` knows
HANDLED = (SemhashError, OSError, MemoryError, SQLAlchemyError)


class Service:
    """The indexes one server answers for (each loads its model on first use): those named at
    start, or every index of the store as it is now (one built after the start is served, one
    dropped is gone). Writes from this process are serialized by a lock, and SQL serializes
    writers across processes."""

    def __init__(self, target: str, names: list[str] | None = None, data_root: str | None = None):
        self.store = Store(target, "write")  # a mistyped path is an error, never a new database
        self.chosen = list(names) if names else None  # None: every index of the store, now
        found = self.chosen or self.store.index_names()
        if not found:
            raise StoreError(f"{target} holds no index; build one with `semhash index build`")
        self.indexes = {n: Index(self.store, n) for n in found}  # StoreError for unknown names
        self.data_root = data_root  # where named data sets' images are (thumbnails)
        self._write = threading.Lock()

    def prime(self, k: int = 10) -> None:
        """Load every index's search structures and time its k-NN plans before serving: done in the
        first request instead, it stalls that worker for up to a second (1M codes), and meanwhile
        the other workers accept every new connection (measured: 2 workers no faster than 1)."""
        for index in list(self.indexes.values()):
            s = index.searcher
            if len(s):
                s.knn(s.codes[:1], min(k, len(s)))

    def names(self) -> list[str]:
        """The indexes served now: those of the store (one SELECT), of the chosen ones if any. The
        structures of an index no longer there are let go."""
        there = self.store.index_names()
        for gone in set(self.indexes) - set(there):
            self.indexes.pop(gone, None)
        return there if self.chosen is None else [n for n in self.chosen if n in there]

    def index(self, name: str) -> Index:
        """The index `name`, opened on first use when the server serves every index of the store;
        IndexNotFound (404) for one it does not serve. One dropped since it was opened answers
        IndexNotFound at its next read of SQL."""
        index = self.indexes.get(name)
        if index is not None:
            return index
        if self.chosen is not None and name not in self.chosen:
            raise IndexNotFound(f"no index named {name!r} here (serving: {', '.join(self.chosen)})")
        # another request may open it meanwhile: the first one kept is everyone's
        return self.indexes.setdefault(name, Index(self.store, name))

    def listing(self) -> list[dict]:
        """info() of each index served now; one dropped while the list is made is left out."""
        listed = []
        for name in self.names():
            try:
                listed.append(self.info(name))
            except IndexNotFound:
                continue
        return listed

    def add(self, name: str, keys, codes, labels=None, sources=None, metas=None, snippets=None) -> dict:
        index = self.index(name)
        with self._write:
            index.add(keys, codes, labels=labels, sources=sources, metas=metas, snippets=snippets)
        return {"index": name, "changed": len(keys), "items": index.row.item_count}

    def remove(self, name: str, keys: list[str]) -> dict:
        """ItemNotFound (from the store) when a key is not there; then nothing is removed."""
        index = self.index(name)
        with self._write:
            removed = index.remove(keys)
        return {"index": name, "changed": len(removed), "items": index.row.item_count}

    def item(self, name: str, key: str) -> dict:
        """The stored item `key`, described (Index.describe); ItemNotFound when it is not there,
        or was removed between the two reads."""
        index = self.index(name)
        ids = index.store.ids_of(name, [key])
        found = index.items([ids[key]]) if key in ids else {}
        if not found:
            raise ItemNotFound(f"no item {key!r} in index {name!r}")
        return index.describe(found[ids[key]])

    def sample(self, name: str, n: int, seed: int) -> list[dict]:
        """n items picked at random (the browse page offers them as queries); fewer when some are
        removed while they are read."""
        index = self.index(name)
        s = index.searcher
        pick = np.random.default_rng(seed).choice(len(s), min(n, len(s)), replace=False) if len(s) else []
        meta = index.items(s.ids[pick])
        return [index.describe(meta[int(i)]) for i in s.ids[pick] if int(i) in meta]

    def info(self, name: str) -> dict:
        index = self.index(name)
        info = index.info()
        takes = (index.row.hasher_header or {}).get("input")
        return {
            **{k: info[k] for k in ("name", "bits", "items", "generation", "updated", "memory_bytes_per_item")},
            "model": info["hasher"],
            "takes": {k: takes.get(k) for k in ("shape", "normalization", "kind")} if takes else None,
        }


def create_app(
    target: str,
    names: list[str] | None = None,
    data_root: str | None = None,
    token: str | None = None,
    host: str | None = None,
) -> FastAPI:
    """The FastAPI application serving `names` (default: every index) of the store at `target`.
    token: what writes must present (Authorization: Bearer); host: the address the server listens
    on, when known (the launcher's): it decides whether writes without a token are allowed
    (loopback only) and which Host headers are answered."""
    app = FastAPI(
        title="semhash",
        version=__version__,
        lifespan=_lifespan,
        description="Semantic hashing retrieval: Hamming-ball and k-NN search over binary codes.",
        docs_url=None,  # served below from the installed swagger-ui-bundle: no CDN, so it works offline
    )
    _offline_docs(app)
    app.state.service = Service(target, names, data_root)
    app.state.guard = Guard(token, loopback=host is None or is_loopback(host))
    app.add_middleware(Gate, hosts=None if host is None else allowed_hosts(host))
    for kind in HANDLED:
        app.add_exception_handler(kind, _error_response)
    app.add_exception_handler(RequestValidationError, _invalid_request)
    app.include_router(router)
    app.add_api_route("/", _browse, response_class=HTMLResponse, include_in_schema=False)
    return app


def _offline_docs(app: FastAPI) -> None:
    """/docs: Swagger UI from the swagger-ui-bundle package's own files (FastAPI's default page loads
    them from a CDN, and shows nothing on a machine without internet)."""
    from fastapi.openapi.docs import get_swagger_ui_html
    from fastapi.staticfiles import StaticFiles
    from swagger_ui_bundle import swagger_ui_path

    app.mount("/docs-assets", StaticFiles(directory=swagger_ui_path), name="docs-assets")

    def docs() -> HTMLResponse:
        return get_swagger_ui_html(
            openapi_url=app.openapi_url,
            title="semhash API",
            swagger_js_url="/docs-assets/swagger-ui-bundle.js",
            swagger_css_url="/docs-assets/swagger-ui.css",
            swagger_favicon_url="/docs-assets/favicon-32x32.png",
        )

    app.add_api_route("/docs", docs, response_class=HTMLResponse, include_in_schema=False)


@asynccontextmanager
async def _lifespan(app: FastAPI):
    app.state.service.prime()
    yield


def _error_response(_request: Request, exc: Exception) -> JSONResponse:
    """The one translation (hashing/errors.py): a one-line detail, the status from the error's type."""
    err = translate(exc)  # never None for the HANDLED kinds
    return JSONResponse({"detail": str(err)}, status_code=err.http_status)


def _invalid_request(_request: Request, exc: RequestValidationError) -> JSONResponse:
    """A request that does not fit its schema: 422 with one line naming the first field at fault."""
    errors = exc.errors()
    first = errors[0] if errors else {"loc": (), "msg": "invalid request"}
    where = ".".join(str(p) for p in first.get("loc", ()) if p not in ("body", "query", "path")) or "request"
    more = f" (and {len(errors) - 1} more)" if len(errors) > 1 else ""
    return JSONResponse({"detail": f"{where}: {first.get('msg', 'invalid')}{more}"}, status_code=422)


def _browse() -> str:
    return Path(__file__).with_name("browse.html").read_text()
