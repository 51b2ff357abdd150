"""Models and versions: create, register, read, search, annotate, soft-delete."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any

from modelyard.domain import expressions
from modelyard.domain.content import DataInput, StoredContent
from modelyard.domain.entities import ModelVersion, RegisteredModel
from modelyard.domain.expression_eval import Prepared
from modelyard.domain.names import (
    check_key,
    check_model_name,
    check_tags,
    check_version_fields,
)
from modelyard.domain.paging import Key, Page, check_max_results, collect, decode_token
from modelyard.domain.principal import Permission
from modelyard.domain.refs import RefKind
from modelyard.domain.runs import is_run_uri
from modelyard.domain.stages import Stage
from modelyard.domain.suggest import with_suggestion
from modelyard.errors import AlreadyExists, InvalidInput, InvalidTransition, NotFound
from modelyard.services import moves
from modelyard.services.base import Context, UseCase, to_version
from modelyard.services.bulk import collector_paused
from modelyard.services.datasets import Datasets
from modelyard.services.lineage import parse_parent, provenance, run_artifact_source
from modelyard.services.operations import operation
from modelyard.storage.content.presence import check_present
from modelyard.storage.sql import audit_log as audit
from modelyard.storage.sql import repository as repo
from modelyard.storage.sql import webhooks_repository as hooks
from modelyard.storage.sql.filters import compile_filter

_STAGES = frozenset(s.value for s in Stage)


class Catalog(UseCase):
    """Models and versions; ``datasets`` resolves the data inputs a version records."""

    def __init__(self, ctx: Context, datasets: Datasets) -> None:
        super().__init__(ctx)
        self.datasets = datasets

    # -- models -------------------------------------------------------------------------
    @operation(Permission.CONTRIBUTE)
    def create_model(
        self, name: str, *, description: str = "", tags: dict[str, Any] | None = None,
        actor: str | None = None,
    ) -> RegisteredModel:
        """Create an empty registered model (``register`` creates one when missing)."""
        who, now = self._actor(actor), self.clock()
        check_model_name(name)
        clean_tags = check_tags(tags or {})
        with self.db.transaction() as conn:
            if not repo.insert_model_if_missing(
                conn, name=name, description=description, tags=clean_tags, actor=who.user,
                at=now
            ):
                raise _exists(conn, name)
            audit.record(conn, at=now, actor=who, action="model.create", model=name,
                         after={"description": description, "tags": clean_tags})
        return self.get_model(name)

    @operation(Permission.READ)
    def get_model(self, name: str) -> RegisteredModel:
        """One registered model with its latest and production versions and aliases."""
        with self.db.read() as conn:
            row = self._model(conn, name)
            return self._to_model(conn, [row])[0]

    @operation(Permission.READ)
    def list_models(
        self, *, max_results: int | None = None, page_token: str | None = None
    ) -> Page[RegisteredModel]:
        """Registered models by name (deleted ones excluded), a page at a time if asked."""
        limit, cursor = check_max_results(max_results), decode_token(page_token, "models", 1)
        with self.db.read() as conn:
            return collect(lambda after, n: self._to_model(
                conn, repo.list_models(conn, cursor=after, limit=n)),
                lambda m: (m.name,), limit, cursor, kind="models")

    @operation(Permission.ADMIN)
    def delete_model(self, name: str, *, actor: str | None = None) -> None:
        """Soft delete: the name stays taken so version numbers are never reused."""
        who, now = self._actor(actor), self.clock()
        with self.db.transaction() as conn:
            model = self._model(conn, name)
            if repo.latest_in_stage(conn, model.id, "production") is not None:
                raise InvalidTransition(
                    f"model {name!r} has a production version; archive it before deleting"
                )
            repo.update_model(conn, model.id, deleted_at=now, updated_at=now)
            audit.record(conn, at=now, actor=who, action="model.delete", model=name,
                         before={"deleted": False}, after={"deleted": True})

    @operation(Permission.ADMIN)
    def rename_model(self, name: str, new_name: str, *, actor: str | None = None
                     ) -> RegisteredModel:
        """Give the model a new name and free the old one. Admins only: every address and
        script that names the model (``models:/NAME/…``) stops finding it.

        Rows refer to the model by id, so its versions, aliases, stages, policy and
        requests follow it; webhook subscriptions to it move along. Audit events keep the
        name they were recorded under (the chain hashes it), and reading the model's
        events (``audit``, ``history``, rollback) follows it through its renames.
        """
        who, now = self._actor(actor), self.clock()
        check_model_name(new_name)
        with self.db.transaction() as conn:
            model = self._model(conn, name)
            if repo.find_model(conn, new_name, include_deleted=True) is not None:
                raise _exists(conn, new_name)
            repo.update_model(conn, model.id, name=new_name, updated_at=now)
            hooks.rename_model(conn, name, new_name)
            audit.record(conn, at=now, actor=who, action="model.rename", model=new_name,
                         before={"name": name}, after={"name": new_name})
        return self.get_model(new_name)

    def _to_model(self, conn: Any, rows: list[repo.ModelRow]) -> list[RegisteredModel]:
        summaries = repo.model_summaries(conn, [r.id for r in rows])
        aliases = repo.aliases_of_models(conn, [r.id for r in rows])
        return [
            RegisteredModel(
                name=r.name, description=r.description or "", tags=dict(r.tags or {}),
                created_by=r.created_by, created_at=r.created_at, updated_at=r.updated_at,
                latest_version=summaries[r.id]["latest"],
                production_version=summaries[r.id]["production"],
                version_count=summaries[r.id]["count"],
                aliases=aliases[r.id],
            )
            for r in rows
        ]

    # -- versions -----------------------------------------------------------------------
    @operation(Permission.CONTRIBUTE)
    def create_version(
        self,
        name: str,
        content: StoredContent | str,
        *,
        params: dict[str, Any] | None = None,
        metrics: dict[str, Any] | None = None,
        tags: dict[str, Any] | None = None,
        description: str = "",
        aliases: Iterable[str] = (),
        lineage: dict[str, Any] | None = None,
        run: str | None = None,
        parent: str | None = None,
        datasets: Iterable[str | DataInput] = (),
        actor: str | None = None,
    ) -> ModelVersion:
        """Create the next version of ``name`` over content already in the store.

        ``content`` is what the content plane stored (checked against the store before
        anything commits), or a ``runs:/<run_id>/<path>`` address of a run's artifact. The
        metadata goes in one transaction. ``run`` and ``parent`` (``NAME/VERSION``) record
        lineage, and the run's params and metrics become the version's unless given.
        ``datasets`` (``datasets:/NAME/V`` or data described by digest) are recorded under
        ``lineage["datasets"]``. ``register`` is the call that starts from a path.
        """
        who = self._actor(actor)
        fields = check_version_fields(name, params, metrics, tags, aliases)
        clean = {"params": fields.params, "metrics": fields.metrics, "tags": fields.tags}
        parent_ref = parse_parent(parent) if parent is not None else None
        inputs = [self.datasets.dataset_input(d) for d in datasets]
        if isinstance(content, str):
            if not is_run_uri(content):
                raise InvalidInput(f"{content!r} is not a runs:/<run_id>/<path> address")
            stored, run = run_artifact_source(self.db, content, run)
        else:
            check_present(self.store, content)
            stored = content
        artifact_name = stored.name
        now = self.clock()
        with self.db.transaction() as conn:
            allocated = repo.allocate_version(conn, name, now)  # the model usually exists
            if allocated is None:  # else create it, or find the one a racing writer made
                if repo.insert_model_if_missing(conn, name=name, description="", tags={},
                                                actor=who.user, at=now):
                    audit.record(conn, at=now, actor=who, action="model.create", model=name,
                                 after={"description": "", "tags": {}})
                allocated = repo.allocate_version(conn, name, now)
            if allocated is None:
                raise _exists(conn, name)
            model_id, number = allocated
            lineage = {**(lineage or {}), **provenance(self, conn, run=run, parent=parent_ref)}
            if inputs:
                lineage["datasets"] = [*lineage.get("datasets", []), *inputs]
            for key in ("params", "metrics") if run is not None else ():
                clean[key] = {**lineage[key], **clean[key]}
            values = dict(
                model_id=model_id, version=number, digest=stored.digest,
                artifact_kind=stored.kind, artifact_name=artifact_name,
                size=stored.size, file_count=stored.file_count, stage="none",
                description=description, lineage=lineage or {}, created_by=who.user,
                created_at=now, updated_at=now, **clean,
            )
            row = repo.insert_version(conn, **values)
            audit.record(
                conn, at=now, actor=who, action="version.register", model=name, version=number,
                after={"stage": "none", "digest": stored.digest, "size": stored.size,
                       "artifact_kind": stored.kind, "artifact_name": artifact_name,
                       "file_count": stored.file_count,
                       "description": description, "lineage": lineage or {}, **clean},
            )
            for alias in fields.aliases:
                moves.move_alias(conn, model_id, name, alias, int(row.id), number, who, now)
        return to_version(row._asdict(), name, list(fields.aliases))

    @operation(Permission.READ)
    def get_version(self, name_or_uri: str, version: str | int | None = None) -> ModelVersion:
        """By number, stage, ``latest``, ``@alias`` or a ``models:/`` address."""
        ref = self._ref(name_or_uri, version)
        check_model_name(ref.name)
        value = int(ref.value or 0) if ref.kind is RefKind.NUMBER else ref.value
        with self.db.read() as conn:  # two statements when it exists
            row = repo.find_named_version(conn, ref.name, ref.kind.value, value)
            if row is None:  # raises NotFound saying what is missing
                _, row = self._resolve(conn, ref)
            return to_version(row._asdict(), ref.name,
                              repo.aliases_of_version(conn, int(row.id)))

    @operation(Permission.READ)
    def list_versions(
        self, name: str, filter: str | None = None, *, descending: bool = False,
        max_results: int | None = None, page_token: str | None = None,
    ) -> Page[ModelVersion]:
        """The versions of ``name``, optionally filtered; oldest first, or newest first
        when ``descending``."""
        return self.search_versions(filter, name=name, descending=descending,
                                    max_results=max_results, page_token=page_token)

    @operation(Permission.READ)
    def search_versions(
        self, filter: str | None = None, *, name: str | None = None, descending: bool = False,
        max_results: int | None = None, page_token: str | None = None,
    ) -> Page[ModelVersion]:
        """Versions (of every model, or of ``name``) matching the filter language.

        The filter is compiled to SQL (``storage.sql.filters``); only the rows whose match
        SQL cannot settle are evaluated here, so the meaning is the evaluator's on every
        backend. Pages are in (name, version) order, or its reverse when ``descending``
        (a keyset either way: a page token belongs to one direction).
        """
        kind = "versions-desc" if descending else "versions"
        limit, cursor = check_max_results(max_results), decode_token(page_token, kind, 2)
        expr = expressions.parse(filter) if filter else None
        with self.db.read() as conn:
            model_ids = [self._model(conn, name).id] if name is not None else None
            condition = compile_filter(expr, self.db.dialect) if expr is not None else None
            prepared = (Prepared(expr) if condition is not None and not condition.exact
                        and expr is not None else None)

            def fetch(after: Key | None, n: int | None) -> list[tuple[ModelVersion, bool]]:
                with collector_paused():
                    rows = repo.list_versions(conn, model_ids=model_ids, condition=condition,
                                              cursor=after, limit=n, descending=descending)
                    settled = [bool(r["sure"]) for r in rows]
                    return list(zip(self._versions(conn, rows, name), settled, strict=True))

            page = collect(fetch, lambda p: (p[0].name, p[0].version), limit, cursor,
                           kind=kind, accept=None if prepared is None else lambda p: p[1]
                           or prepared.evaluate(p[0].filter_context()).passed)
            return Page([v for v, _ in page], page.next_page_token)

    # -- annotations --------------------------------------------------------------------
    @operation(Permission.CONTRIBUTE)
    def set_tags(
        self, name: str, tags: dict[str, Any], *, version: int | str | None = None,
        actor: str | None = None,
    ) -> None:
        """Merge ``tags`` into the model's tags, or into one version's when ``version`` is given."""
        clean = check_tags(tags)
        self._annotate(name, version, "tags", "tags.set",
                       lambda before, _: {**before, **clean}, actor)

    @operation(Permission.CONTRIBUTE)
    def set_tag(
        self, name: str, key: str, value: Any, *, version: int | str | None = None,
        actor: str | None = None,
    ) -> None:
        """Set one tag on the model, or on one version."""
        self.set_tags(name, {key: value}, version=version, actor=actor)

    @operation(Permission.CONTRIBUTE)
    def delete_tags(
        self, name: str, keys: Iterable[str], *, version: int | str | None = None,
        missing_ok: bool = False, actor: str | None = None,
    ) -> None:
        """Remove tags from the model, or from one version, in one change.

        A key it does not have is ``NotFound`` (a mistyped key should not pass silently)
        unless ``missing_ok``, MLflow's behaviour; removing nothing records nothing."""
        wanted = [check_key(key, "tag name") for key in keys]
        if not wanted:
            raise InvalidInput("no tag names given: name at least one tag to delete")

        def without(before: dict[str, str], subject: str) -> dict[str, str] | None:
            missing = [key for key in wanted if key not in before]
            if missing and not missing_ok:
                raise NotFound(f"tag {missing[0]!r} of {subject} not found",
                               hint=with_suggestion(missing[0], before,
                                                    f"its tags: {', '.join(before) or 'none'}"),
                               key=missing[0])
            after = {k: v for k, v in before.items() if k not in wanted}
            return after if after != before else None

        self._annotate(name, version, "tags", "tags.delete", without, actor)

    @operation(Permission.CONTRIBUTE)
    def delete_tag(
        self, name: str, key: str, *, version: int | str | None = None,
        missing_ok: bool = False, actor: str | None = None,
    ) -> None:
        """Remove one tag from the model, or from one version."""
        self.delete_tags(name, [key], version=version, missing_ok=missing_ok, actor=actor)

    @operation(Permission.CONTRIBUTE)
    def set_description(
        self, name: str, description: str, *, version: int | str | None = None,
        actor: str | None = None,
    ) -> None:
        """Describe the model, or one version."""
        text = str(description)
        self._annotate(name, version, "description", "description.set",
                       lambda _before, _subject: text, actor)

    def _annotate(
        self, name: str, version: int | str | None, field: str, action: str,
        change: Callable[[Any, str], Any], actor: str | None,
    ) -> None:
        """Replace ``field`` of the model or version with ``change(before, subject)``, one
        transaction and one audit event; ``None`` from ``change`` means nothing changes."""
        who, now = self._actor(actor), self.clock()
        update: Callable[..., None]
        with self.db.transaction() as conn:
            if version is None:
                row, update, number = self._model(conn, name), repo.update_model, None
                subject = f"model {name!r}"
            else:
                _, row = self._resolve(conn, self._ref(name, version))
                update, number = repo.update_version, int(row.version)
                subject = f"version {number} of {name!r}"
            before = row.tags if field == "tags" else row.description
            after = change(before, subject)
            if after is None:
                return
            update(conn, row.id, **{field: after, "updated_at": now})
            audit.record(conn, at=now, actor=who, action=action, model=name, version=number,
                         before={field: before}, after={field: after})

    @operation(Permission.ADMIN)
    def delete_version(self, name: str, version: int | str, *, actor: str | None = None) -> None:
        """Soft delete; the number is never reused. A production version must be archived first."""
        who, now = self._actor(actor), self.clock()
        with self.db.transaction() as conn:
            model, row = self._resolve(conn, self._ref(name, version))
            if row.stage == "production":
                raise InvalidTransition(
                    f"version {row.version} of {name!r} is in production; archive it first "
                    "(promote another version or transition it to archived)"
                )
            for alias in repo.aliases_by_version(conn, [model.id], [row.id]).get(row.id, []):
                moves.delete_alias(conn, model.id, name, alias, int(row.version), who, now)
            repo.update_version(conn, row.id, deleted_at=now, updated_at=now)
            audit.record(conn, at=now, actor=who, action="version.delete", model=name,
                         version=int(row.version), before={"stage": row.stage},
                         after={"deleted": True})



def _exists(conn: Any, name: str) -> AlreadyExists:
    row = repo.find_model(conn, name, include_deleted=True)
    if row is not None and row.deleted_at is not None:
        return AlreadyExists(
            f"model {name!r} was deleted; its name stays reserved so version numbers "
            "are never reused",
            name=name,
        )
    return AlreadyExists(f"model {name!r} already exists", name=name)
