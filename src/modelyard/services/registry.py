"""The registry: every use case of the core behind one object (``modelyard.connect()``).

``RegistryApi`` lists every public operation once, typed (``_Op``); ``Registry`` is its
embedded face, binding each to a use case composed here explicitly (lifecycle is handed
governance, catalog the dataset resolver, the content plane this facade as its metadata
API, …), and the remote client is its other face. Every operation is declared in the
operation table (``services.operations``) with the permission it needs, and runs as the
face's principal.
"""

from __future__ import annotations

import types
from collections.abc import Callable
from typing import Any, Concatenate, Generic, ParamSpec, Self, TypeVar, overload

from modelyard.domain.principal import Principal
from modelyard.services.access import Access
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
from modelyard.services.webhooks import Webhooks
from modelyard.storage.content.objects import ObjectStore
from modelyard.storage.sql.database import Database

S = TypeVar("S")
P = ParamSpec("P")
R = TypeVar("R")


class _Op(Generic[S, P, R]):
    """``api.x``: the operation ``method``, bound by the face (``_bind``) that holds it.

    Typed as ``method`` without its ``self``, so mypy checks every call on every face."""

    def __init__(self, method: Callable[Concatenate[S, P], R]) -> None:
        self.method = method
        self.name = method.__name__
        self.part = method.__qualname__.split(".")[0]  # the use-case class that defines it

    @overload
    def __get__(self, obj: None, owner: type[Any]) -> _Op[S, P, R]: ...
    @overload
    def __get__(self, obj: RegistryApi, owner: type[Any]) -> Callable[P, R]: ...
    def __get__(self, obj: RegistryApi | None, owner: type[Any]) -> Any:
        if obj is None:
            return self
        return obj._bind(self)


class RegistryApi:
    """The registry's public API, listed once. Each face says how an operation runs:
    ``Registry`` binds it to its in-process use cases; the remote client sends it to a
    server (all but the content plane's, which run on the caller's side)."""

    @property
    def principal(self) -> Principal:
        raise NotImplementedError

    @property
    def user(self) -> str:
        return self.principal.user

    def _bind(self, op: _Op[Any, ..., Any]) -> Callable[..., Any]:
        raise NotImplementedError

    def close(self) -> None:
        raise NotImplementedError

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    @classmethod
    def operations(cls) -> dict[str, _Op[Any, ..., Any]]:
        """Every operation of the API by name (what a server serves, a client sends)."""
        return {name: value for name, value in vars(RegistryApi).items()
                if isinstance(value, _Op)}

    # -- models and versions ------------------------------------------------------------
    create_model = _Op(Catalog.create_model)
    get_model = _Op(Catalog.get_model)
    list_models = _Op(Catalog.list_models)
    delete_model = _Op(Catalog.delete_model)
    rename_model = _Op(Catalog.rename_model)
    create_version = _Op(Catalog.create_version)
    get_version = _Op(Catalog.get_version)
    list_versions = _Op(Catalog.list_versions)
    search_versions = _Op(Catalog.search_versions)
    set_tags = _Op(Catalog.set_tags)
    set_tag = _Op(Catalog.set_tag)
    delete_tags = _Op(Catalog.delete_tags)
    delete_tag = _Op(Catalog.delete_tag)
    set_description = _Op(Catalog.set_description)
    delete_version = _Op(Catalog.delete_version)
    # -- lifecycle ----------------------------------------------------------------------
    transition = _Op(Lifecycle.transition)
    rollback = _Op(Lifecycle.rollback)
    set_alias = _Op(Lifecycle.set_alias)
    delete_alias = _Op(Lifecycle.delete_alias)
    history = _Op(Lifecycle.history)
    # -- the store ----------------------------------------------------------------------
    verify = _Op(Artifacts.verify)
    added_bytes = _Op(Artifacts.added_bytes)
    dataset_added_bytes = _Op(Artifacts.dataset_added_bytes)
    collect_garbage = _Op(Artifacts.collect_garbage)
    # -- governance ---------------------------------------------------------------------
    set_policy = _Op(Governance.set_policy)
    get_policy = _Op(Governance.get_policy)
    request_promotion = _Op(Governance.request_promotion)
    approve = _Op(Governance.approve)
    reject = _Op(Governance.reject)
    cancel = _Op(Governance.cancel)
    get_request = _Op(Governance.get_request)
    list_requests = _Op(Governance.list_requests)
    # -- oversight ----------------------------------------------------------------------
    audit = _Op(Oversight.audit)
    verify_audit = _Op(Oversight.verify_audit)
    audit_checkpoint = _Op(Oversight.audit_checkpoint)
    dossier = _Op(Oversight.dossier)
    # -- datasets -----------------------------------------------------------------------
    create_dataset_version = _Op(Datasets.create_dataset_version)
    get_dataset = _Op(Datasets.get_dataset)
    list_datasets = _Op(Datasets.list_datasets)
    dataset_input = _Op(Datasets.dataset_input)
    # -- tracking -----------------------------------------------------------------------
    create_experiment = _Op(Tracking.create_experiment)
    get_experiment = _Op(Tracking.get_experiment)
    list_experiments = _Op(Tracking.list_experiments)
    create_run = _Op(Tracking.create_run)
    end_run = _Op(Tracking.end_run)
    get_run = _Op(Tracking.get_run)
    list_runs = _Op(Tracking.list_runs)
    metric_history = _Op(Tracking.metric_history)
    log_params = _Op(Tracking.log_params)
    log_metrics = _Op(Tracking.log_metrics)
    set_run_tags = _Op(Tracking.set_run_tags)
    record_run_input = _Op(Tracking.record_run_input)
    record_run_artifact = _Op(Tracking.record_run_artifact)
    check_running = _Op(Tracking.check_running)
    run_artifact = _Op(Tracking.run_artifact)
    # -- the content plane: paths in, digests to the operations above --------------------
    register = _Op(Files.register)
    download = _Op(Files.download)
    load = _Op(Files.load)
    register_dataset = _Op(Files.register_dataset)
    download_dataset = _Op(Files.download_dataset)
    resolve_dataset_input = _Op(Files.resolve_dataset_input)
    log_run_input = _Op(Files.log_run_input)
    log_run_artifact = _Op(Files.log_run_artifact)
    # -- users and tokens (a shared registry's) ------------------------------------------
    create_user = _Op(Access.create_user)
    list_users = _Op(Access.list_users)
    set_role = _Op(Access.set_role)
    disable_user = _Op(Access.disable_user)
    create_token = _Op(Access.create_token)
    list_tokens = _Op(Access.list_tokens)
    revoke_token = _Op(Access.revoke_token)
    # -- lineage ------------------------------------------------------------------------
    create_webhook = _Op(Webhooks.create_webhook)
    list_webhooks = _Op(Webhooks.list_webhooks)
    disable_webhook = _Op(Webhooks.disable_webhook)
    enable_webhook = _Op(Webhooks.enable_webhook)
    delete_webhook = _Op(Webhooks.delete_webhook)
    test_webhook = _Op(Webhooks.test_webhook)
    list_deliveries = _Op(Webhooks.list_deliveries)
    redeliver = _Op(Webhooks.redeliver)

    lineage = _Op(Lineages.lineage)
    diff = _Op(Lineages.diff)
    model_descriptor = _Op(Lineages.model_descriptor)


class Registry(RegistryApi):
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
        self._artifacts = Artifacts(self.ctx, self._catalog, self._datasets)
        self._tracking = Tracking(self.ctx, self._datasets)
        self._lineages = Lineages(self.ctx)
        self._oversight = Oversight(self.ctx, self._governance)
        self._files = Files(self, LocalContent(store))
        self._access = Access(self.ctx)
        self._webhooks = Webhooks(self.ctx)
        self._parts: dict[str, object] = {
            type(part).__name__: part for part in (
                self._datasets, self._catalog, self._governance, self._lifecycle,
                self._artifacts, self._tracking, self._lineages, self._oversight,
                self._files, self._access, self._webhooks)}

    def _bind(self, op: _Op[Any, ..., Any]) -> Callable[..., Any]:
        return types.MethodType(op.method, self._parts[op.part])

    @property
    def db(self) -> Database:
        return self.ctx.db

    @property
    def store(self) -> ObjectStore:
        return self.ctx.store

    @property
    def principal(self) -> Principal:
        return self.ctx.principal

    def close(self) -> None:
        self.db.dispose()
