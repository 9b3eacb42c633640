"""The HTTP service's request and response bodies (pydantic), and the limits they enforce.

Each body is what the OpenAPI schema at /docs documents; the routes (http_routes.py) take and
return them.
"""

from __future__ import annotations

from typing import Annotated, Any

from pydantic import BaseModel, Field

from ..storage.validate import MAX_KEY  # the one limit on keys (what an add accepts, what a search asks)

MAX_K = 1000
MAX_QUERIES = 1000

K = Annotated[int, Field(ge=1, le=MAX_K, description="Neighbours per query.")]
Radius = Annotated[int | None, Field(ge=0, le=256, description="Only items within this Hamming distance.")]


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
    keys: list[Annotated[str, Field(max_length=MAX_KEY)]] = Field(min_length=1, max_length=MAX_QUERIES)
    k: K = 10
    radius: Radius = None


class Item(BaseModel):
    id: int
    key: str
    label: int | None = None
    class_: str | None = Field(None, alias="class", description="The label's class name, when the index knows it.")
    source: str | None = None
    meta: Any = Field(None, description="The item's metadata: any JSON stored with it (an object from this API).")


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
    key: str = Field(min_length=1, max_length=MAX_KEY)
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


ERRORS = {400: {"model": Problem}, 404: {"model": Problem}, 422: {"model": Problem}}
