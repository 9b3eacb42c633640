"""The HTTP service's request and response bodies (pydantic), and the limits they enforce.

Each body is what the OpenAPI schema at /docs documents; the routes (http_routes.py) take and
return them.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import BaseModel, Field

from ..storage.validate import MAX_KEY  # the one limit on keys (what an add accepts, what a search asks)

MAX_K = 1000
MAX_QUERIES = 1000
MAX_TEXT = 100_000  # characters of a query text (hashing/inputs/texts.py MAX_QUERY_CHARS)
MAX_DOCUMENT = 1 << 20  # characters of a document added (texts.py MAX_DOC_CHARS); the body is 12 MiB at most

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


class TextQuery(BaseModel):
    texts: list[Annotated[str, Field(max_length=MAX_TEXT)]] = Field(
        min_length=1, max_length=MAX_QUERIES, description="Query texts, read with the model's own vocabulary."
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
    snippet: str | None = Field(None, description="The start of a document (texts only).")


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


class NewText(BaseModel):
    key: str = Field(min_length=1, max_length=MAX_KEY)
    text: str = Field(min_length=1, max_length=MAX_DOCUMENT)
    label: int | None = Field(None, ge=-(2**31), lt=2**31)
    meta: dict | None = None


class NewTexts(BaseModel):
    items: list[NewText] = Field(min_length=1, max_length=10_000)


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
    takes: dict | None = Field(None, description="What the model encodes: item shape, normalization, input kind.")
    memory_bytes_per_item: float


class Health(BaseModel):
    status: str
    version: str
    indexes: list[str]


class Problem(BaseModel):
    detail: str


ERRORS = {400: {"model": Problem}, 404: {"model": Problem}, 422: {"model": Problem}}


class DuplicateQuery(BaseModel):
    """POST /indexes/{name}/duplicates: index_store/duplicates' find_duplicates, bounded."""

    threshold: float | None = Field(None, ge=-1, le=1, description="In the items' units (default: the kind's).")
    radius: int | None = Field(None, ge=0, le=256, description="Candidates' Hamming radius (default: derived).")
    keep: Literal["first", "oldest", "largest"] = "first"
    against: str | None = Field(None, max_length=200, description="Set B: another index this service serves.")
    pairs: bool = Field(False, description="Also list the verified pairs with their scores.")
    max_groups: int = Field(1000, ge=0, le=10_000, description="Groups returned at most (largest first).")
    max_pairs: int = Field(1000, ge=0, le=10_000, description="Pairs returned at most (best first).")


class DuplicateGroup(BaseModel):
    keep: str
    remove: list[str]
    scores: list[float]


class DuplicatePair(BaseModel):
    a: str
    b: str
    score: float
    distance: int


class Duplicates(BaseModel):
    items: int
    against_items: int | None = None
    units: str
    threshold: float | None
    radius: int
    radius_rule: str
    keep: str
    candidates: int
    verified: int
    groups: list[DuplicateGroup]
    pairs: list[DuplicatePair] | None = None
    truncated: bool
