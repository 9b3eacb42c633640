"""semhash.hashing: binary codes, hashers (PCAH, ITQ, LSH, autoencoders), data and metrics."""


def __getattr__(name: str):
    # the version on first use: importlib.metadata costs 40 ms of every command's start-up
    if name == "__version__":
        from importlib.metadata import PackageNotFoundError, version

        try:
            found = version("semhash")
        except PackageNotFoundError:  # running from a source tree that was never installed
            found = "0.0.0+unknown"
        globals()["__version__"] = found  # looked up once
        return found
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
