"""The registry: every use case of the core, behind one object (``modelyard.connect()``)."""

from __future__ import annotations

from modelyard.services.artifacts import ArtifactService
from modelyard.services.datasets import DatasetService
from modelyard.services.lineage import LineageService
from modelyard.services.oversight import OversightService


class Registry(LineageService, OversightService, DatasetService, ArtifactService):
    """Models, versions, lifecycle, aliases, history and verified artifacts.

    The same methods serve the Python API, the CLI and (later) the REST server; each
    public method takes ``actor=`` to name who acts, defaulting to the user it was opened for.
    """

    def close(self) -> None:
        self.db.dispose()

    def __enter__(self) -> Registry:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
