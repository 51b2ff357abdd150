"""Content by digest (placeholder until the upload protocol lands): no routes yet."""

from __future__ import annotations

from fastapi import APIRouter


def router() -> APIRouter:
    return APIRouter()
