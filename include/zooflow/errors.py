"""Errors that carry a message fit for the user: what went wrong and what to do about it."""


class ZooflowError(Exception):
    """A problem the user can fix; the message names the problem and the fix."""


class ConfigurationError(ZooflowError):
    """Bad or missing settings: connection, slice spec, Params, paths."""


class PanoptesError(ZooflowError):
    """Panoptes (or the sandbox) refused or failed a request in a way retries will not cure."""


class PanoptesUnreachable(PanoptesError):
    """Nothing answered at ``endpoint``: the command line rephrases this with where the address came from."""

    def __init__(self, message: str, endpoint: str, reason: str) -> None:
        super().__init__(message)
        self.endpoint = endpoint
        self.reason = reason
