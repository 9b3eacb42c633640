"""semhash.index_store: SQL store of items and codes, hash tables, FAISS index and search."""
