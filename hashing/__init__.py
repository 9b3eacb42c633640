"""semhash.hashing: binary codes, hashers (PCAH, ITQ, LSH, autoencoders), data and metrics."""

from importlib.metadata import PackageNotFoundError, version

try:
    __version__ = version("semhash")
except PackageNotFoundError:  # running from a source tree that was never installed
    __version__ = "0.0.0+unknown"
