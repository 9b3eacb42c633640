"""Errors a user can act on. The CLI prints their message as one line and exits non-zero."""


class SemhashError(Exception):
    """Base class: the message is complete and meant for the user."""


class DataError(SemhashError):
    """A data set is missing, corrupt, or of the wrong shape."""


class ArtifactError(SemhashError):
    """A model file is missing, corrupt, foreign or does not match what it is used with."""


class ParameterError(SemhashError):
    """A parameter is out of range (bits, radius, k, ...)."""
