"""MLflow's model registry API: registered models, versions, tags, aliases and stages.

Each endpoint reads its fields, calls the registry's operation and writes MLflow's record.
Stages are ours under MLflow's names (``None``, ``Staging``, ``Production``, ``Archived``),
and a transition is ``Lifecycle.transition``: production goes through the model's policy,
so a move that needs approval is refused (``PERMISSION_DENIED``, naming the ``modelyard
request`` that asks for it) and the previous production is archived in the same
transaction. A version's MLflow ``source`` and logged-model id are kept in its lineage
(``lineage["mlflow"]``); its content is what ``get-download-uri`` serves.
"""

from __future__ import annotations

from collections.abc import Iterable
from contextlib import suppress
from typing import Any

from modelyard.domain.entities import ModelVersion, RegisteredModel
from modelyard.domain.names import check_version_number
from modelyard.domain.stages import Stage, parse_stage
from modelyard.errors import NotFound
from modelyard.server.mlflow import places
from modelyard.server.mlflow.artifacts import version_source
from modelyard.server.mlflow.search import (
    Fields,
    check_max_results,
    page,
    parse_filter,
    parse_order,
)
from modelyard.server.mlflow.wire import (
    API_PREFIXES,
    Call,
    Routes,
    compact,
    key_values,
    millis,
)
from modelyard.services.registry import Registry

routes = Routes(API_PREFIXES)
STAGE_NAMES = {Stage.NONE: "None", Stage.STAGING: "Staging", Stage.PRODUCTION: "Production",
               Stage.ARCHIVED: "Archived"}


# -- records -------------------------------------------------------------------------------

def model_version(v: ModelVersion) -> dict[str, Any]:
    mlflow = v.lineage.get("mlflow") or {}
    return compact({
        "name": v.name, "version": str(v.version),
        "creation_timestamp": millis(v.created_at),
        "last_updated_timestamp": millis(v.updated_at),
        "user_id": v.created_by, "current_stage": STAGE_NAMES[Stage(v.stage)],
        "description": v.description,
        "source": mlflow.get("source") or places.version_location(v),
        "run_id": v.lineage.get("run_id"), "status": "READY",
        "tags": key_values(v.tags), "aliases": list(v.aliases),
        "model_id": mlflow.get("model_id"),
    })


def registered_model(m: RegisteredModel, versions: Iterable[ModelVersion]) -> dict[str, Any]:
    return {
        "name": m.name, "creation_timestamp": millis(m.created_at),
        "last_updated_timestamp": millis(m.updated_at), "user_id": m.created_by,
        "description": m.description,
        "latest_versions": [model_version(v) for v in latest_per_stage(versions)],
        "tags": key_values(m.tags),
        "aliases": [{"alias": a, "version": str(n)} for a, n in sorted(m.aliases.items())],
    }


def latest_per_stage(versions: Iterable[ModelVersion],
                     stages: Iterable[Stage] = tuple(Stage)) -> list[ModelVersion]:
    """The newest version in each of ``stages`` (MLflow's ``latest_versions``)."""
    wanted = set(stages)
    newest: dict[str, ModelVersion] = {}
    for v in versions:
        if Stage(v.stage) in wanted and (v.stage not in newest
                                         or v.version > newest[v.stage].version):
            newest[v.stage] = v
    return sorted(newest.values(), key=lambda v: v.version)


def _model(registry: Registry, name: str) -> dict[str, Any]:
    return registered_model(registry.get_model(name), registry.list_versions(name))


def _version_number(call: Call) -> int:
    return check_version_number(call.text("version", required=True))


# -- registered models ---------------------------------------------------------------------

@routes.rpc("POST", "/registered-models/create")
def create_registered_model(call: Call) -> dict[str, Any]:
    made = call.registry.create_model(call.text("name", required=True),
                                      description=call.text("description"),
                                      tags=call.pairs("tags"))
    return {"registered_model": registered_model(made, [])}


@routes.rpc("GET", "/registered-models/get")
def get_registered_model(call: Call) -> dict[str, Any]:
    return {"registered_model": _model(call.registry, call.text("name", required=True))}


@routes.rpc("POST", "/registered-models/rename")
def rename_registered_model(call: Call) -> dict[str, Any]:
    renamed = call.registry.rename_model(call.text("name", required=True),
                                         call.text("new_name", required=True))
    return {"registered_model": _model(call.registry, renamed.name)}


@routes.rpc("PATCH", "/registered-models/update")
def update_registered_model(call: Call) -> dict[str, Any]:
    name = call.text("name", required=True)
    if "description" in call.fields:
        call.registry.set_description(name, call.text("description"))
    return {"registered_model": _model(call.registry, name)}


@routes.rpc("DELETE", "/registered-models/delete")
def delete_registered_model(call: Call) -> None:
    call.registry.delete_model(call.text("name", required=True))


@routes.rpc("GET", "/registered-models/search")
def search_registered_models(call: Call) -> dict[str, Any]:
    where = parse_filter(call.text("filter"), ["name"])
    order = parse_order(
        call.texts("order_by"),
        {"name": lambda m: m.name, "creation_timestamp": lambda m: millis(m.created_at),
         "last_updated_timestamp": lambda m: millis(m.updated_at)},
        identity=[(lambda m: m.name, False)], default=["name ASC"])
    pinned = where.pinned("name")
    models: list[RegisteredModel] = (
        list(call.registry.list_models()) if pinned is None else _maybe_model(call, pinned))
    found, token = page([m for m in models if where.matches(Fields({"name": m.name}, m.tags))],
                        order, check_max_results(call.number("max_results"), 100, 1000),
                        call.optional("page_token"), "models")
    return compact({"registered_models": [
        registered_model(m, call.registry.list_versions(m.name)) for m in found],
        "next_page_token": token})


def _maybe_model(call: Call, name: str) -> list[RegisteredModel]:
    try:
        return [call.registry.get_model(name)]
    except NotFound:
        return []


@routes.rpc("POST", "/registered-models/get-latest-versions")
@routes.rpc("GET", "/registered-models/get-latest-versions")
def get_latest_versions(call: Call) -> dict[str, Any]:
    name = call.text("name", required=True)
    stages = [parse_stage(s) for s in call.texts("stages")] or list(Stage)
    return {"model_versions": [model_version(v) for v in latest_per_stage(
        call.registry.list_versions(name), stages)]}


@routes.rpc("POST", "/registered-models/set-tag")
def set_registered_model_tag(call: Call) -> None:
    call.registry.set_tag(call.text("name", required=True), call.text("key", required=True),
                          call.text("value"))


@routes.rpc("DELETE", "/registered-models/delete-tag")
def delete_registered_model_tag(call: Call) -> None:
    """A key the model does not have is no error, as in MLflow (its model must exist)."""
    call.registry.delete_tag(call.text("name", required=True),
                             call.text("key", required=True), missing_ok=True)


@routes.rpc("POST", "/registered-models/alias")
def set_registered_model_alias(call: Call) -> None:
    call.registry.set_alias(call.text("name", required=True), call.text("alias", required=True),
                            _version_number(call))


@routes.rpc("DELETE", "/registered-models/alias")
def delete_registered_model_alias(call: Call) -> None:
    call.registry.delete_alias(call.text("name", required=True),
                               call.text("alias", required=True))


@routes.rpc("GET", "/registered-models/alias")
def get_model_version_by_alias(call: Call) -> dict[str, Any]:
    found = call.registry.get_version(call.text("name", required=True),
                                      "@" + call.text("alias", required=True))
    return {"model_version": model_version(found)}


# -- model versions ------------------------------------------------------------------------

@routes.rpc("POST", "/model-versions/create")
def create_model_version(call: Call) -> dict[str, Any]:
    source, model_id = call.text("source", required=True), call.optional("model_id")
    content, run = version_source(call.registry, source, model_id)
    created = call.registry.create_version(
        call.text("name", required=True), content, tags=call.pairs("tags"),
        description=call.text("description"), run=call.optional("run_id") or run,
        lineage={"mlflow": compact({"source": source, "model_id": model_id})})
    return {"model_version": model_version(created)}


@routes.rpc("GET", "/model-versions/get")
def get_model_version(call: Call) -> dict[str, Any]:
    found = call.registry.get_version(call.text("name", required=True), _version_number(call))
    return {"model_version": model_version(found)}


@routes.rpc("PATCH", "/model-versions/update")
def update_model_version(call: Call) -> dict[str, Any]:
    name, number = call.text("name", required=True), _version_number(call)
    if "description" in call.fields:
        call.registry.set_description(name, call.text("description"), version=number)
    return {"model_version": model_version(call.registry.get_version(name, number))}


@routes.rpc("DELETE", "/model-versions/delete")
def delete_model_version(call: Call) -> None:
    call.registry.delete_version(call.text("name", required=True), _version_number(call))


@routes.rpc("GET", "/model-versions/search")
def search_model_versions(call: Call) -> dict[str, Any]:
    where = parse_filter(call.text("filter"),
                         ["name", "version_number", "run_id", "source_path"])
    order = parse_order(
        call.texts("order_by"),
        {"name": lambda v: v.name, "version_number": lambda v: v.version,
         "creation_timestamp": lambda v: millis(v.created_at),
         "last_updated_timestamp": lambda v: millis(v.updated_at)},
        identity=[(lambda v: v.name, False), (lambda v: v.version, False)],
        default=["last_updated_timestamp DESC", "name ASC", "version_number DESC"])
    pinned = where.pinned("name")
    versions: list[ModelVersion] = []
    with suppress(NotFound):
        versions = call.registry.search_versions(name=pinned)
    records = {id(v): model_version(v) for v in versions}
    found, token = page(
        [v for v in versions if where.matches(Fields(
            {"name": v.name, "version_number": v.version, "run_id": v.lineage.get("run_id"),
             "source_path": records[id(v)]["source"]}, v.tags))],
        order, check_max_results(call.number("max_results"), 10_000, 200_000),
        call.optional("page_token"), "versions")
    return compact({"model_versions": [records[id(v)] for v in found],
                    "next_page_token": token})


@routes.rpc("GET", "/model-versions/get-download-uri")
def get_model_version_download_uri(call: Call) -> dict[str, Any]:
    found = call.registry.get_version(call.text("name", required=True), _version_number(call))
    return {"artifact_uri": places.version_location(found)}


@routes.rpc("POST", "/model-versions/transition-stage")
def transition_model_version_stage(call: Call) -> dict[str, Any]:
    """``archive_existing_versions`` archives the other versions in the target stage; the
    previous production is archived by every promotion, as the registry always does."""
    name, number = call.text("name", required=True), _version_number(call)
    target = parse_stage(call.text("stage", required=True))
    moved = call.registry.transition(name, number, target)
    if call.flag("archive_existing_versions") and target is Stage.STAGING:
        for other in call.registry.search_versions(name=name):
            if other.stage == Stage.STAGING and other.version != number:
                call.registry.transition(name, other.version, Stage.ARCHIVED,
                                         comment=f"archived as {number} moved to staging")
    return {"model_version": model_version(moved)}


@routes.rpc("POST", "/model-versions/set-tag")
def set_model_version_tag(call: Call) -> None:
    call.registry.set_tag(call.text("name", required=True), call.text("key", required=True),
                          call.text("value"), version=_version_number(call))


@routes.rpc("DELETE", "/model-versions/delete-tag")
def delete_model_version_tag(call: Call) -> None:
    """A key the version does not have is no error, as in MLflow (its version must exist)."""
    call.registry.delete_tag(call.text("name", required=True), call.text("key", required=True),
                             version=_version_number(call), missing_ok=True)
