"""The search engine: hash tables, multi-index hashing, compiled k-NN, the searcher, its planner, the cache."""
