"""semhash over HTTP: a JSON API (FastAPI, OpenAPI at /docs) and a browse page at /.

    app = create_app("items.db")                   # every index in the store, or names=["mnist"]
    uvicorn.run(app)                               # what `semhash serve items.db` does

Each request reads the index's generation from SQL and reloads the derived structures when it
moved, so several replicas serving one PostgreSQL store see each other's additions. Bad requests
are 4xx with a one-line `detail`; searches and reads run in the server's thread pool.
"""

from __future__ import annotations

import io
import json
import os
import threading
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Annotated

import numpy as np
from fastapi import FastAPI, File, Form, Query, UploadFile
from fastapi.responses import HTMLResponse, JSONResponse, Response
from pydantic import BaseModel, Field

from ..hashing import __version__
from ..hashing.errors import SemhashError
from .index import Index
from .store import Store, StoreError

MAX_K = 1000
MAX_QUERIES = 1000
MAX_UPLOAD_BYTES = 10 << 20

K = Annotated[int, Field(ge=1, le=MAX_K, description="Neighbours per query.")]
Radius = Annotated[int | None, Field(ge=0, le=256, description="Only items within this Hamming distance.")]


class NotFound(SemhashError):
    """An index or item that is not there (HTTP 404)."""


# --- request and response bodies ---
class CodeQuery(BaseModel):
    codes: list[Annotated[str, Field(pattern=r"^[0-9a-fA-F]*$", max_length=64)]] = Field(
        min_length=1, max_length=MAX_QUERIES, description="Packed codes in hex, bits/4 digits each (FAISS bit order)."
    )
    k: K = 10
    radius: Radius = None


class VectorQuery(BaseModel):
    vectors: list[list[float]] = Field(
        min_length=1, max_length=MAX_QUERIES, description="Input vectors of the index's model (flattened items)."
    )
    k: K = 10
    radius: Radius = None


class ItemQuery(BaseModel):
    keys: list[Annotated[str, Field(max_length=500)]] = Field(min_length=1, max_length=MAX_QUERIES)
    k: K = 10
    radius: Radius = None


class Item(BaseModel):
    id: int
    key: str
    label: int | None = None
    source: str | None = None
    meta: dict | None = None


class Hit(Item):
    distance: int


class QueryHits(BaseModel):
    query: str
    hits: list[Hit]


class SearchResult(BaseModel):
    index: str
    bits: int
    k: int
    radius: int | None
    queries: list[QueryHits]


class NewItem(BaseModel):
    key: str = Field(min_length=1, max_length=500)
    vector: list[float] = Field(min_length=1)
    label: int | None = Field(None, ge=-(2**31), lt=2**31)
    meta: dict | None = None


class NewItems(BaseModel):
    items: list[NewItem] = Field(min_length=1, max_length=10_000)


class Changed(BaseModel):
    index: str
    changed: int
    items: int


class IndexInfo(BaseModel):
    name: str
    bits: int
    items: int
    generation: int
    updated: str
    model: str | None
    takes: dict | None = Field(None, description="What the model encodes: item shape and normalization.")
    memory_bytes_per_item: float


class Health(BaseModel):
    status: str
    version: str
    indexes: list[str]


class Problem(BaseModel):
    detail: str


ERRORS = {400: {"model": Problem}, 404: {"model": Problem}}


class Service:
    """The indexes one server answers for, each with its model (loaded on first use)."""

    def __init__(self, target: str, names: list[str] | None = None):
        self.store = Store(target)
        self.names = names or self.store.index_names()
        if not self.names:
            raise StoreError(f"{target} holds no index; build one with `semhash index build`")
        self.indexes = {n: Index(self.store, n) for n in self.names}  # StoreError for unknown names
        self._models: dict[str, object] = {}
        self._write = threading.Lock()

    def prime(self, k: int = 10) -> None:
        """Load every index's search structures and time its k-NN plans before serving: done in the
        first request instead, it stalls that worker for up to a second (1M codes), and meanwhile
        the other workers accept every new connection (measured: 2 workers no faster than 1)."""
        for index in self.indexes.values():
            s = index.searcher
            if len(s):
                s.knn(s.codes[:1], min(k, len(s)))

    def index(self, name: str) -> Index:
        if name not in self.indexes:
            raise NotFound(f"no index named {name!r} here (serving: {', '.join(self.names)})")
        return self.indexes[name]

    def model(self, name: str):
        from .build import index_model

        if name not in self._models:
            self._models[name] = index_model(self.index(name))
        return self._models[name]

    def search(self, name: str, codes: np.ndarray, labels: list[str], k: int, radius: int | None) -> dict:
        index = self.index(name)
        hits = index.search(codes, k=k, radius=radius)  # the searcher refuses a radius over the code length
        return {
            "index": name,
            "bits": index.bits,
            "k": k,
            "radius": radius,
            "queries": [{"query": q, "hits": h} for q, h in zip(labels, hits)],
        }

    def codes_from_hex(self, name: str, codes: list[str]) -> np.ndarray:
        nbytes = self.index(name).bits // 8
        bad = [c for c in codes if len(c) != 2 * nbytes]
        if bad:
            raise SemhashError(
                f"index {name!r} holds {nbytes * 8}-bit codes: {2 * nbytes} hex digits each, got {len(bad[0])}"
            )
        return np.frombuffer(bytes.fromhex("".join(codes)), dtype=np.uint8).reshape(len(codes), nbytes)

    def encode_vectors(self, name: str, vectors: list[list[float]]) -> np.ndarray:
        from .queries import vectors_to_codes

        return vectors_to_codes(self.model(name), vectors, "the request")

    def encode_image(self, name: str, data: bytes, filename: str | None) -> np.ndarray:
        from .queries import image_codes

        if len(data) > MAX_UPLOAD_BYTES:
            raise SemhashError(f"images are limited to {MAX_UPLOAD_BYTES >> 20} MiB")
        return image_codes(self.model(name), io.BytesIO(data), filename or "the upload")

    def add(self, name: str, keys, codes, labels=None, sources=None, metas=None) -> dict:
        index = self.index(name)
        with self._write:  # one writer per process; SQL serializes writers across processes
            index.add(keys, codes, labels=labels, sources=sources, metas=metas)
        return {"index": name, "changed": len(keys), "items": index.row.item_count}

    def remove(self, name: str, keys: list[str]) -> dict:
        index = self.index(name)
        with self._write:
            removed = index.remove(keys)
        return {"index": name, "changed": len(removed), "items": index.row.item_count}

    def item(self, name: str, key: str) -> dict:
        index = self.index(name)
        ids = index.store.ids_of(name, [key])
        if key not in ids:
            raise NotFound(f"no item {key!r} in index {name!r}")
        return index.store.items(name, [ids[key]])[ids[key]]

    def sample(self, name: str, n: int, seed: int) -> list[dict]:
        """n items picked at random (the browse page offers them as queries)."""
        s = self.index(name).searcher
        pick = np.random.default_rng(seed).choice(len(s), min(n, len(s)), replace=False) if len(s) else []
        meta = self.index(name).store.items(name, s.ids[pick])
        return [meta[int(i)] for i in s.ids[pick]]

    def info(self, name: str) -> dict:
        index = self.index(name)
        info = index.info()
        takes = (index.row.hasher_header or {}).get("input")
        return {
            **{k: info[k] for k in ("name", "bits", "items", "generation", "updated", "memory_bytes_per_item")},
            "model": info["hasher"],
            "takes": {"shape": takes.get("shape"), "normalization": takes.get("normalization")} if takes else None,
        }


def create_app(target: str, names: list[str] | None = None, data_root: str | None = None) -> FastAPI:
    """The FastAPI application serving `names` (default: every index) of the store at `target`."""
    service = Service(target, names)

    @asynccontextmanager
    async def lifespan(_app):
        service.prime()
        yield

    app = FastAPI(
        title="semhash",
        version=__version__,
        lifespan=lifespan,
        description="Semantic hashing retrieval: Hamming-ball and k-NN search over binary codes.",
    )
    app.state.service = service

    @app.exception_handler(SemhashError)
    def _semhash_error(_request, exc: SemhashError):
        status = 404 if isinstance(exc, NotFound) else 400
        return JSONResponse({"detail": str(exc)}, status_code=status)

    @app.get("/health", response_model=Health, tags=["service"])
    def health():
        return {"status": "ok", "version": __version__, "indexes": service.names}

    @app.get("/indexes", response_model=list[IndexInfo], tags=["indexes"])
    def indexes():
        return [service.info(n) for n in service.names]

    @app.get("/indexes/{name}", response_model=IndexInfo, responses=ERRORS, tags=["indexes"])
    def index_info(name: str):
        return service.info(name)

    # Searches are CPU-bound numpy work of a millisecond or less: they run on the event loop (a
    # thread-pool hop costs more than it saves under the GIL; more cores means more --workers),
    # and their results go out as JSON directly, documented by response_model but not re-validated.
    @app.post("/indexes/{name}/search", response_model=SearchResult, responses=ERRORS, tags=["search"])
    async def search_codes(name: str, body: CodeQuery):
        """Search with raw codes."""
        return _json(service.search(name, service.codes_from_hex(name, body.codes), body.codes, body.k, body.radius))

    @app.post("/indexes/{name}/search/vectors", response_model=SearchResult, responses=ERRORS, tags=["search"])
    async def search_vectors(name: str, body: VectorQuery):
        """Search with input vectors, encoded by the index's model."""
        codes = service.encode_vectors(name, body.vectors)
        return _json(service.search(name, codes, [f"vector {i}" for i in range(len(codes))], body.k, body.radius))

    @app.post("/indexes/{name}/search/items", response_model=SearchResult, responses=ERRORS, tags=["search"])
    async def search_items(name: str, body: ItemQuery):
        """Search with stored items' codes, by key."""
        from .queries import item_codes

        index = service.index(name)
        try:
            codes = item_codes(index, body.keys)
        except StoreError as exc:
            raise NotFound(str(exc)) from None
        return _json(service.search(name, codes, body.keys, body.k, body.radius))

    @app.post("/indexes/{name}/search/image", response_model=SearchResult, responses=ERRORS, tags=["search"])
    async def search_image(
        name: str,
        image: UploadFile = File(..., description="An image file (PNG, JPEG, ...)."),
        k: int = Form(10, ge=1, le=MAX_K),
        radius: int = Form(-1, ge=-1, le=256, description="Only items within this Hamming distance; -1: any."),
    ):
        """Search with an uploaded image, converted as the model's training images were."""
        # (form fields cannot carry null, hence -1 and "" for "none" in multipart requests)
        codes = service.encode_image(name, await image.read(MAX_UPLOAD_BYTES + 1), image.filename)
        return _json(service.search(name, codes, [image.filename or "upload"], k, None if radius < 0 else radius))

    @app.get("/indexes/{name}/items", response_model=Item, responses=ERRORS, tags=["items"])
    def get_item(name: str, key: str = Query(..., max_length=500)):
        return service.item(name, key)

    @app.get("/indexes/{name}/sample", response_model=list[Item], responses=ERRORS, tags=["items"])
    def sample(name: str, n: int = Query(12, ge=1, le=100), seed: int = Query(0, ge=0, le=2**32 - 1)):
        return service.sample(name, n, seed)

    @app.post("/indexes/{name}/items", response_model=Changed, responses=ERRORS, tags=["items"])
    def add_items(name: str, body: NewItems):
        """Add items given by their input vectors (encoded by the index's model)."""
        codes = service.encode_vectors(name, [it.vector for it in body.items])
        return service.add(
            name,
            [it.key for it in body.items],
            codes,
            labels=[it.label for it in body.items],
            sources=["api"] * len(codes),
            metas=[it.meta for it in body.items],
        )

    @app.post("/indexes/{name}/items/image", response_model=Changed, responses=ERRORS, tags=["items"])
    def add_image(
        name: str,
        image: UploadFile = File(...),
        key: str = Form(..., min_length=1, max_length=500),
        label: str = Form("", pattern=r"^(-?[0-9]{1,9})?$", description="An integer label, or empty."),
    ):
        """Add one item given by an image."""
        codes = service.encode_image(name, image.file.read(MAX_UPLOAD_BYTES + 1), image.filename)
        return service.add(
            name, [key], codes, labels=[int(label) if label else None], sources=[f"upload:{image.filename or ''}"]
        )

    @app.delete("/indexes/{name}/items", response_model=Changed, responses=ERRORS, tags=["items"])
    def remove_items(name: str, key: list[str] = Query(..., min_length=1, max_length=MAX_QUERIES)):
        try:
            return service.remove(name, key)
        except StoreError as exc:
            raise NotFound(str(exc)) if "not in index" in str(exc) else exc from None

    @app.get("/indexes/{name}/thumbnail", responses={200: {"content": {"image/png": {}}}, **ERRORS}, tags=["items"])
    def thumbnail(name: str, key: str = Query(..., max_length=500)):
        """The item's image as a PNG, when it came from an image file or a named data set."""
        from .grid import item_pixels

        item = service.item(name, key)
        pixels = item_pixels(item["key"], item["source"], data_root)
        if pixels is None:
            raise NotFound(f"item {key!r} has no image at hand")
        return Response(_png(pixels), media_type="image/png")

    @app.get("/", response_class=HTMLResponse, include_in_schema=False)
    def browse():
        return (Path(__file__).with_name("browse.html")).read_text()

    return app


def _json(content) -> Response:
    return Response(json.dumps(content, separators=(",", ":")), media_type="application/json")


def _png(pixels: np.ndarray) -> bytes:
    from PIL import Image

    im = Image.fromarray((np.clip(pixels, 0, 1) * 255).astype(np.uint8))
    buf = io.BytesIO()
    im.save(buf, format="PNG")
    return buf.getvalue()


CONFIG_ENV = "SEMHASH_SERVE"


def app_from_env() -> FastAPI:
    """Factory for uvicorn's worker processes: the configuration travels in $SEMHASH_SERVE.

    Each worker computes on one thread (FAISS's OpenMP, torch): requests are short and the workers
    are the parallelism. Measured: two workers with OpenMP's default threads on 2 cores answered
    94 k-NN q/s instead of 660, their spinning threads fighting over the cores."""
    import faiss
    import torch

    faiss.omp_set_num_threads(1)
    torch.set_num_threads(1)
    cfg = json.loads(os.environ[CONFIG_ENV])
    return create_app(cfg["target"], cfg.get("names"), cfg.get("data_root"))


def serve(
    target: str,
    names: list[str] | None = None,
    host: str = "127.0.0.1",
    port: int = 8000,
    workers: int = 1,
    data_root: str | None = None,
    log_level: str = "info",
) -> None:
    """Run the service under uvicorn until interrupted (checks the store before it listens)."""
    import uvicorn

    if workers < 1 or not 0 <= port < 65536:
        raise SemhashError(f"--workers must be positive and --port within 0-65535, got {workers} and {port}")
    Service(target, names)  # a bad target or name fails here, as one line, not in every worker
    os.environ[CONFIG_ENV] = json.dumps({"target": target, "names": names, "data_root": data_root})
    uvicorn.run(
        "semhash.index_store.service:app_from_env",
        factory=True,
        host=host,
        port=port,
        workers=workers,
        log_level=log_level,
    )
