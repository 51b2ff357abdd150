"""The web UI: server-rendered pages over the same registry operations as the REST API.

Every page builds a ``Registry`` as the signed-in principal and calls its operations, so
permissions, governance and auditing are the code every other face runs; templates only
show what the operations returned. No JavaScript is needed: charts and the lineage graph
are SVG drawn on the server, and every action is a form posted with a CSRF token.
"""

from __future__ import annotations

from fastapi import APIRouter

from . import assets, catalog, oversight, review, signin, tracking


def router() -> APIRouter:
    """All pages, mounted at ``/`` beside ``/api/v1`` (left out of the OpenAPI schema)."""
    pages = APIRouter()
    for part in (signin, catalog, review, tracking, oversight, assets):
        pages.include_router(part.routes)
    return pages
