"""The HTTP service: a delivery layer over the library, as cli/ is."""
