"""The registry: every use case of the core behind one object (``modelyard.connect()``).

The use cases are composed explicitly (lifecycle is handed governance, catalog the dataset
resolver, the content plane this facade as its metadata API, …) and the facade exposes each
public operation once, typed, through ``_Part``.
Every exposed method is declared in the operation table (``services.operations``) with the
permission it needs, and runs as the registry's principal.
"""

from __future__ import annotations

import types
from collections.abc import Callable
from typing import Any, Concatenate, Generic, ParamSpec, TypeVar, overload

from modelyard.domain.principal import Principal
from modelyard.services.artifacts import Artifacts
from modelyard.services.base import Clock, Context, utc_now
from modelyard.services.catalog import Catalog
from modelyard.services.content import LocalContent
from modelyard.services.datasets import Datasets
from modelyard.services.files import Files
from modelyard.services.governance import Governance
from modelyard.services.lifecycle import Lifecycle
from modelyard.services.lineage import Lineages
from modelyard.services.oversight import Oversight
from modelyard.services.tracking import Tracking
from modelyard.storage.content.objects import ObjectStore
from modelyard.storage.sql.database import Database

S = TypeVar("S")
P = ParamSpec("P")
R = TypeVar("R")


class _Part(Generic[S, P, R]):
    """``Registry.x`` is ``method`` bound to the use-case object in attribute ``part``."""

    def __init__(self, part: str, method: Callable[Concatenate[S, P], R]) -> None:
        self.part = part
        self.method = method

    @overload
    def __get__(self, obj: None, owner: type[Any]) -> _Part[S, P, R]: ...
    @overload
    def __get__(self, obj: Registry, owner: type[Any]) -> Callable[P, R]: ...
    def __get__(self, obj: Registry | None, owner: type[Any]) -> Any:
        if obj is None:
            return self
        return types.MethodType(self.method, getattr(obj, self.part))


class Registry:
    """Models, versions, lifecycle, governance, tracking, datasets and audit, as one API.

    Embedded, ``user`` names a principal with every role; a server passes the principal it
    authenticated. ``actor=`` on a change means acting on behalf of someone (admins only).
    """

    def __init__(self, db: Database, store: ObjectStore, *, user: str | None = None,
                 principal: Principal | None = None, clock: Clock = utc_now) -> None:
        if principal is None:
            principal = Principal.embedded(user or "")
        self.ctx = Context(db, store, principal, clock)
        self._datasets = Datasets(self.ctx)
        self._catalog = Catalog(self.ctx, self._datasets)
        self._governance = Governance(self.ctx)
        self._lifecycle = Lifecycle(self.ctx, self._catalog, self._governance)
        self._artifacts = Artifacts(self.ctx, self._catalog)
        self._tracking = Tracking(self.ctx, self._datasets)
        self._lineages = Lineages(self.ctx)
        self._oversight = Oversight(self.ctx, self._governance)
        self._files = Files(self, LocalContent(store))

    @property
    def db(self) -> Database:
        return self.ctx.db

    @property
    def store(self) -> ObjectStore:
        return self.ctx.store

    @property
    def principal(self) -> Principal:
        return self.ctx.principal

    @property
    def user(self) -> str:
        return self.ctx.principal.user

    # -- models and versions ------------------------------------------------------------
    create_model = _Part("_catalog", Catalog.create_model)
    get_model = _Part("_catalog", Catalog.get_model)
    list_models = _Part("_catalog", Catalog.list_models)
    delete_model = _Part("_catalog", Catalog.delete_model)
    create_version = _Part("_catalog", Catalog.create_version)
    get_version = _Part("_catalog", Catalog.get_version)
    list_versions = _Part("_catalog", Catalog.list_versions)
    search_versions = _Part("_catalog", Catalog.search_versions)
    set_tags = _Part("_catalog", Catalog.set_tags)
    set_tag = _Part("_catalog", Catalog.set_tag)
    set_description = _Part("_catalog", Catalog.set_description)
    delete_version = _Part("_catalog", Catalog.delete_version)
    # -- lifecycle ----------------------------------------------------------------------
    transition = _Part("_lifecycle", Lifecycle.transition)
    rollback = _Part("_lifecycle", Lifecycle.rollback)
    set_alias = _Part("_lifecycle", Lifecycle.set_alias)
    delete_alias = _Part("_lifecycle", Lifecycle.delete_alias)
    history = _Part("_lifecycle", Lifecycle.history)
    # -- the store ----------------------------------------------------------------------
    verify = _Part("_artifacts", Artifacts.verify)
    added_bytes = _Part("_artifacts", Artifacts.added_bytes)
    # -- governance ---------------------------------------------------------------------
    set_policy = _Part("_governance", Governance.set_policy)
    get_policy = _Part("_governance", Governance.get_policy)
    request_promotion = _Part("_governance", Governance.request_promotion)
    approve = _Part("_governance", Governance.approve)
    reject = _Part("_governance", Governance.reject)
    cancel = _Part("_governance", Governance.cancel)
    get_request = _Part("_governance", Governance.get_request)
    list_requests = _Part("_governance", Governance.list_requests)
    # -- oversight ----------------------------------------------------------------------
    audit = _Part("_oversight", Oversight.audit)
    verify_audit = _Part("_oversight", Oversight.verify_audit)
    audit_checkpoint = _Part("_oversight", Oversight.audit_checkpoint)
    dossier = _Part("_oversight", Oversight.dossier)
    # -- datasets -----------------------------------------------------------------------
    create_dataset_version = _Part("_datasets", Datasets.create_dataset_version)
    get_dataset = _Part("_datasets", Datasets.get_dataset)
    list_datasets = _Part("_datasets", Datasets.list_datasets)
    dataset_input = _Part("_datasets", Datasets.dataset_input)
    # -- tracking -----------------------------------------------------------------------
    create_experiment = _Part("_tracking", Tracking.create_experiment)
    get_experiment = _Part("_tracking", Tracking.get_experiment)
    list_experiments = _Part("_tracking", Tracking.list_experiments)
    create_run = _Part("_tracking", Tracking.create_run)
    end_run = _Part("_tracking", Tracking.end_run)
    get_run = _Part("_tracking", Tracking.get_run)
    list_runs = _Part("_tracking", Tracking.list_runs)
    metric_history = _Part("_tracking", Tracking.metric_history)
    log_params = _Part("_tracking", Tracking.log_params)
    log_metrics = _Part("_tracking", Tracking.log_metrics)
    set_run_tags = _Part("_tracking", Tracking.set_run_tags)
    record_run_input = _Part("_tracking", Tracking.record_run_input)
    record_run_artifact = _Part("_tracking", Tracking.record_run_artifact)
    check_running = _Part("_tracking", Tracking.check_running)
    run_artifact = _Part("_tracking", Tracking.run_artifact)
    # -- the content plane: paths in, digests to the operations above --------------------
    register = _Part("_files", Files.register)
    download = _Part("_files", Files.download)
    load = _Part("_files", Files.load)
    register_dataset = _Part("_files", Files.register_dataset)
    download_dataset = _Part("_files", Files.download_dataset)
    resolve_dataset_input = _Part("_files", Files.resolve_dataset_input)
    log_run_input = _Part("_files", Files.log_run_input)
    log_run_artifact = _Part("_files", Files.log_run_artifact)
    # -- lineage ------------------------------------------------------------------------
    lineage = _Part("_lineages", Lineages.lineage)
    diff = _Part("_lineages", Lineages.diff)
    model_descriptor = _Part("_lineages", Lineages.model_descriptor)

    def close(self) -> None:
        self.db.dispose()

    def __enter__(self) -> Registry:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
