"""semhash.hashing: binary codes, hashers (PCAH, ITQ, LSH, autoencoders), data and metrics."""


def __getattr__(name: str):
    # the version on first use: importlib.metadata costs 40 ms of every command's start-up
    if name == "__version__":
        from importlib.metadata import PackageNotFoundError, version

        try:
            return version("semhash")
        except PackageNotFoundError:  # running from a source tree that was never installed
            return "0.0.0+unknown"
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
