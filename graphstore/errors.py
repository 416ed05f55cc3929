"""One root error for the graph store; driver errors are wrapped ``from e``."""

from __future__ import annotations


class GraphStoreError(Exception):
    """Root of every error raised by :mod:`graphstore`."""


class ProvisionError(GraphStoreError):
    """The managed Neo4j server could not be assembled, configured or started."""


class GraphUnavailableError(GraphStoreError):
    """Neo4j cannot be reached (down, restarting, network)."""


class GraphAuthError(GraphStoreError):
    """Neo4j rejected the credentials."""


class ExportFileError(GraphStoreError):
    """An export directory's files do not follow the contract (``graphstore.export_format``)."""


class InputError(GraphStoreError):
    """A source file has bad content; the message names file, line and reason."""

    def __init__(self, path: str, line: int | None, reason: str) -> None:
        where = f"{path}:{line}" if line is not None else path
        super().__init__(f"{where}: {reason}")
        self.path = path
        self.line = line
        self.reason = reason


class VersionError(GraphStoreError):
    """A model version is unknown, incomplete, or cannot be activated."""
