"""The HTTP service's routes, on one APIRouter that `service.create_app` includes.

Each route gets the app's `Service` (its indexes) from `get_service`, turns the request into codes
through `query` (the one query pipeline of the CLI, the service and the Python API) and answers
with the bodies of http_models.py. Errors are exceptions (hashing/errors.py), made responses by the
app's one exception handler.
"""

from __future__ import annotations

import io
import json
import os
import stat
import threading
from collections import OrderedDict
from typing import Annotated, Any

import numpy as np
from fastapi import APIRouter, Depends, File, Form, Query, Request, UploadFile
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import Response

try:  # FastAPI's upload forms need python-multipart; missing, its ImportError names the [serve] extra
    import python_multipart  # noqa: F401
except ImportError:
    import multipart  # noqa: F401  (its name before 0.0.13)

from ...hashing import __version__
from ...hashing.errors import DataError, NotFound, Unavailable
from ...hashing.inputs import images
from ...hashing.inputs.texts import snippet
from .. import query
from ..storage.validate import MAX_KEY
from .guard import require_writer
from .models import (
    ERRORS,
    MAX_K,
    MAX_QUERIES,
    Changed,
    CodeQuery,
    DuplicateQuery,
    Duplicates,
    Health,
    IndexInfo,
    Item,
    ItemQuery,
    NewItems,
    NewTexts,
    Problem,
    SearchResult,
    TextQuery,
    VectorQuery,
)

router = APIRouter()


async def get_service(request: Request):
    """The app's Service (service.py; not imported here, which imports this module). async: a
    plain function would run in the thread pool, and the async routes must not wait for it."""
    return request.app.state.service


Svc = Annotated[Any, Depends(get_service)]
Writer = [Depends(require_writer)]  # routes that change an index
WRITE_ERRORS = {**ERRORS, 401: {"model": Problem}, 403: {"model": Problem}}
Key = Annotated[str, Query(max_length=MAX_KEY)]


# (plain defs: each reads the store's index names from SQL, in the thread pool)
@router.get("/health", response_model=Health, tags=["service"])
def health(service: Svc):
    """The indexes served now: a dropped one is gone, and one built since the start is there when
    the server serves every index of its store."""
    return {"status": "ok", "version": __version__, "indexes": service.names()}


@router.get("/indexes", response_model=list[IndexInfo], tags=["indexes"])
def indexes(service: Svc):
    return service.listing()


@router.get("/indexes/{name}", response_model=IndexInfo, responses=ERRORS, tags=["indexes"])
def index_info(name: str, service: Svc):
    return service.info(name)


# Searches are CPU-bound numpy work of a millisecond or less: they run on the event loop (a
# thread-pool hop costs more than it saves under the GIL; more cores means more --workers),
# and their results go out as JSON directly, documented by response_model but not re-validated.
@router.post("/indexes/{name}/search", response_model=SearchResult, responses=ERRORS, tags=["search"])
async def search_codes(name: str, body: CodeQuery, service: Svc):
    """Search with raw codes."""
    index = service.index(name)
    codes = query.hex_codes(body.codes, index.bits)
    return _json(query.results(index, codes, body.codes, body.k, body.radius))


@router.post("/indexes/{name}/search/vectors", response_model=SearchResult, responses=ERRORS, tags=["search"])
async def search_vectors(name: str, body: VectorQuery, service: Svc):
    """Search with input vectors, encoded by the index's model."""
    index = service.index(name)
    codes = query.input_codes(index.model(), "vectors", body.vectors, "the request")
    labels = [f"vector {i}" for i in range(len(codes))]
    return _json(query.results(index, codes, labels, body.k, body.radius))


@router.post("/indexes/{name}/search/texts", response_model=SearchResult, responses=ERRORS, tags=["search"])
def search_texts(name: str, body: TextQuery, service: Svc):
    """Search with texts, read with the vocabulary of the index's model (a plain def: the thread
    pool reads them, off the event loop)."""
    index = service.index(name)
    codes = query.input_codes(index.model(), "texts", body.texts, "the request")
    labels = [t[:60] for t in body.texts]  # a query is named by its start, as on the command line
    return _json(query.results(index, codes, labels, body.k, body.radius))


@router.post("/indexes/{name}/search/items", response_model=SearchResult, responses=ERRORS, tags=["search"])
async def search_items(name: str, body: ItemQuery, service: Svc):
    """Search with stored items' codes, by key."""
    index = service.index(name)
    return _json(query.item_results(index, body.keys, body.k, body.radius))


@router.post("/indexes/{name}/search/image", response_model=SearchResult, responses=ERRORS, tags=["search"])
async def search_image(
    name: str,
    service: Svc,
    image: UploadFile = File(..., description="An image file (PNG, JPEG, ...)."),
    k: int = Form(10, ge=1, le=MAX_K),
    radius: int = Form(-1, ge=-1, le=256, description="Only items within this Hamming distance; -1: any."),
):
    """Search with an uploaded image, converted as the model's training images were."""
    # (form fields cannot carry null, hence -1 and "" for "none" in multipart requests)
    index = service.index(name)
    data = await image.read(images.MAX_BYTES + 1)
    # decoding and converting an image takes milliseconds to a second: off the event loop
    codes = await run_in_threadpool(
        query.input_codes, index.model(), "images", [data], [image.filename or "the upload"]
    )
    return _json(query.results(index, codes, [image.filename or "upload"], k, None if radius < 0 else radius))


@router.post("/indexes/{name}/duplicates", response_model=Duplicates, responses=ERRORS, tags=["search"])
def duplicates(name: str, body: DuplicateQuery, service: Svc):
    """Near-duplicate groups of an index (or of index `against` against it): candidates from codes,
    verified on the items' signatures; at most max_groups groups and max_pairs pairs."""
    from ..duplicates import find_duplicates

    url = service.index(name).store.url
    other = None if body.against is None else service.index(body.against).store.url
    return find_duplicates(
        url,
        name,
        body.threshold,
        body.radius,
        body.keep,
        other,
        body.against,
        pairs=body.pairs,
        max_pairs=body.max_pairs,
        max_groups=body.max_groups,
    )


@router.get("/indexes/{name}/items", response_model=Item, responses=ERRORS, tags=["items"])
def get_item(name: str, key: Key, service: Svc):
    return service.item(name, key)


@router.get("/indexes/{name}/sample", response_model=list[Item], responses=ERRORS, tags=["items"])
def sample(name: str, service: Svc, n: int = Query(12, ge=1, le=100), seed: int = Query(0, ge=0, le=2**32 - 1)):
    return service.sample(name, n, seed)


@router.post(
    "/indexes/{name}/items", response_model=Changed, responses=WRITE_ERRORS, tags=["items"], dependencies=Writer
)
def add_items(name: str, body: NewItems, service: Svc):
    """Add items given by their input vectors (encoded by the index's model)."""
    items = body.items
    codes = query.input_codes(service.index(name).model(), "vectors", [it.vector for it in items], "the request")
    labels, metas = [it.label for it in items], [it.meta for it in items]
    return service.add(name, [it.key for it in items], codes, labels, ["api"] * len(items), metas)


@router.post(
    "/indexes/{name}/items/texts", response_model=Changed, responses=WRITE_ERRORS, tags=["items"], dependencies=Writer
)
def add_texts(name: str, body: NewTexts, service: Svc):
    """Add documents (encoded by the index's model, read with its vocabulary); each keeps its start
    as the snippet its hits show."""
    items = body.items
    texts = [it.text for it in items]
    codes = query.input_codes(service.index(name).model(), "texts", texts, "the request")
    labels, metas = [it.label for it in items], [it.meta for it in items]
    snippets = [snippet(t) for t in texts]
    return service.add(name, [it.key for it in items], codes, labels, ["api"] * len(items), metas, snippets)


@router.post(
    "/indexes/{name}/items/image", response_model=Changed, responses=WRITE_ERRORS, tags=["items"], dependencies=Writer
)
def add_image(
    name: str,
    service: Svc,
    image: UploadFile = File(...),
    key: str = Form(..., min_length=1, max_length=MAX_KEY),
    label: str = Form("", pattern=r"^(-?[0-9]{1,9})?$", description="An integer label, or empty."),
):
    """Add one item given by an image."""
    data = image.file.read(images.MAX_BYTES + 1)
    codes = query.input_codes(service.index(name).model(), "images", [data], [image.filename or "the upload"])
    labels, sources = [int(label) if label else None], [f"upload:{image.filename or ''}"]
    return service.add(name, [key], codes, labels, sources)


@router.delete(
    "/indexes/{name}/items", response_model=Changed, responses=WRITE_ERRORS, tags=["items"], dependencies=Writer
)
def remove_items(name: str, service: Svc, key: list[str] = Query(..., min_length=1, max_length=MAX_QUERIES)):
    return service.remove(name, key)


# A plain def: FastAPI runs it in its thread pool, so a decode never holds the event loop (where
# the searches run).
@router.get(
    "/indexes/{name}/thumbnail",
    responses={200: {"content": {"image/png": {}}}, **ERRORS, 503: {"model": Problem}},
    tags=["items"],
)
def thumbnail(name: str, key: Key, service: Svc):
    """The item's image as a PNG of at most PREVIEW_SIZE pixels a side, when it came from an image
    file or a named data set; 400 when its file is too large or unreadable to decode."""
    item = service.item(name, key)
    png = THUMBNAILS.png(item["key"], item["source"], service.data_root)
    if png is None:
        raise NotFound(f"item {key!r} has no image at hand")
    return Response(png, media_type="image/png")


class Thumbnails:
    """Items' PNGs, kept per server process: an LRU of at most `entries` and `nbytes`, keyed by the
    source file's path, size and modification time (a file replaced in place is decoded afresh).
    A refusal (an image too large or unreadable) is kept as well: asking again costs no decode.
    At most DECODES_AT_ONCE decodes run at a time, each holding up to images.MAX_PIXEL_LIMIT pixels
    for a moment; a request that waits DECODE_WAIT_S for its turn gets a 503. Thread-safe."""

    def __init__(self, entries: int = 512, nbytes: int = 32 << 20):
        self.entries, self.nbytes, self.used = entries, nbytes, 0
        self._kept: OrderedDict = OrderedDict()  # (path, size, mtime_ns) -> (PNG bytes | None | DataError, bytes)
        self._lock = threading.Lock()
        self._decodes = threading.BoundedSemaphore(DECODES_AT_ONCE)

    def png(self, key: str, source: str | None, data_root) -> bytes | None:
        """The PNG of item `key` (None: no image at hand); DataError naming the item if refused."""
        version = _file_version(source)
        with self._lock:
            entry = self._kept.get(version) if version else None
            if entry is not None:
                self._kept.move_to_end(version)
        value = entry[0] if entry is not None else self._made(key, source, data_root)
        if entry is None and version:
            self._keep(version, value)
        if isinstance(value, DataError):
            raise DataError(f"item {key!r} has no thumbnail: {value}")
        return value

    def _made(self, key: str, source: str | None, data_root):
        from ..grid import item_pixels

        if not self._decodes.acquire(timeout=DECODE_WAIT_S):
            raise Unavailable("the server is busy making other thumbnails; try again")
        try:
            pixels = item_pixels(key, source, data_root)
            return None if pixels is None else _png(pixels)
        except DataError as exc:
            return exc
        finally:
            self._decodes.release()

    def _keep(self, version: tuple, value) -> None:
        size = len(value) if isinstance(value, bytes) else 256  # a refusal: its message and the key
        with self._lock:
            if version in self._kept:
                return  # another request made it meanwhile
            self._kept[version], self.used = (value, size), self.used + size
            while len(self._kept) > self.entries or self.used > self.nbytes:
                self.used -= self._kept.popitem(last=False)[1][1]


DECODES_AT_ONCE, DECODE_WAIT_S = 2, 10.0


def _file_version(source: str | None) -> tuple | None:
    """(path, size, mtime_ns) of a source file, or None when it is no file here."""
    try:
        st = os.stat(source) if source else None
    except (OSError, ValueError):  # ValueError: a NUL byte in a stored source
        return None
    return (source, st.st_size, st.st_mtime_ns) if st is not None and stat.S_ISREG(st.st_mode) else None


THUMBNAILS = Thumbnails()


def _json(content) -> Response:
    return Response(json.dumps(content, separators=(",", ":")), media_type="application/json")


def _png(pixels: np.ndarray) -> bytes:
    from PIL import Image

    im = Image.fromarray((np.clip(pixels, 0, 1) * 255).astype(np.uint8))
    buf = io.BytesIO()
    im.save(buf, format="PNG")
    return buf.getvalue()
