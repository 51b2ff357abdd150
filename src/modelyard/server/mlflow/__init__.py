"""MLflow's REST API on the Modelyard server, so the unmodified ``mlflow`` client works
against it (``MLFLOW_TRACKING_URI`` the server, ``MLFLOW_TRACKING_TOKEN`` a Modelyard token).

A thin adapter: each endpoint reads MLflow's fields, calls the operations of a
``Registry`` built for the token's principal, and writes MLflow's records, so roles,
approval policies and the audit log are exactly the embedded registry's. Nothing here
decides anything the registry decides; what MLflow has and the registry does not (an
experiment's lifecycle, deleting runs and artifacts) is refused with an MLflow-shaped error
that says so.

- ``registry``: registered models, versions, tags, aliases, stages (``/api/2.0/mlflow/``).
- ``tracking``: experiments, runs, metrics, MLflow 3's logged models.
- ``artifacts``: the ``mlflow-artifacts`` proxy and what a new version is made of.
- ``places``: how MLflow's ids and artifact locations map onto the registry's records.
- ``search``: MLflow's filter grammar, orderings and page tokens.
- ``wire``: fields in, records and errors out.
"""

from __future__ import annotations

from fastapi import APIRouter

from modelyard.server.mlflow import artifacts, registry, tracking
from modelyard.server.mlflow.wire import API_PREFIXES, ARTIFACT_PREFIXES, not_found_routes


def router() -> APIRouter:
    """Every MLflow route under ``/api/2.0`` and its ``/ajax-api/2.0`` twin; any other
    path below them answers ``ENDPOINT_NOT_FOUND``."""
    api = APIRouter()
    registry.routes.install(api)
    tracking.routes.install(api)
    artifacts.install(api)
    not_found_routes(api, (*API_PREFIXES, *ARTIFACT_PREFIXES))
    return api
