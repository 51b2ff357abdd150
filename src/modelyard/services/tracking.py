"""Experiment tracking: experiments, runs, and what a run logs while it runs.

Runs live in the metadata database next to models, their artifacts in the same
content-addressed store. A run is open for logging while ``running``; once finished or
failed its params, metrics, inputs and artifacts are a fixed record (tags stay editable).
Every change is an audit event in the same transaction, like everything else.
"""

from __future__ import annotations

import uuid
from typing import Any

from sqlalchemy import Connection

from modelyard.domain import expressions
from modelyard.domain.content import DataInput, StoredContent
from modelyard.domain.expression_eval import Prepared
from modelyard.domain.names import (
    MAX_VERSION,
    check_metrics,
    check_name,
    check_number,
    check_params,
    check_tags,
    is_name,
)
from modelyard.domain.paging import Page, check_max_results, collect, decode_token
from modelyard.domain.principal import Actor, Permission
from modelyard.domain.runs import (
    RUN_MAP_ROOTS,
    RUN_ROOTS,
    Experiment,
    MetricPoint,
    Run,
    RunArtifact,
    RunStatus,
    check_run_id,
    parse_run_uri,
)
from modelyard.errors import AlreadyExists, InvalidInput, InvalidTransition, NotFound
from modelyard.services.base import Context, UseCase
from modelyard.services.datasets import Datasets
from modelyard.services.operations import operation
from modelyard.storage.content.manifest import check_path
from modelyard.storage.content.presence import check_present
from modelyard.storage.sql import audit_log as audit
from modelyard.storage.sql import tracking_repository as repo

_STATUSES = frozenset(s.value for s in RunStatus)


class Tracking(UseCase):
    def __init__(self, ctx: Context, datasets: Datasets) -> None:
        super().__init__(ctx)
        self.datasets = datasets

    # -- experiments --------------------------------------------------------------------
    @operation(Permission.CONTRIBUTE)
    def create_experiment(
        self, name: str, *, description: str = "", tags: dict[str, Any] | None = None,
        actor: str | None = None,
    ) -> Experiment:
        """Create an experiment (``create_run`` creates a missing one on the fly)."""
        who = self._actor(actor)
        with self.db.transaction() as conn:
            if not self._ensure_experiment(conn, name, description, check_tags(tags or {}),
                                           who):
                raise _experiment_exists(name)
        return self.get_experiment(name)

    @operation(Permission.READ)
    def get_experiment(self, name: str) -> Experiment:
        """One experiment with its run count."""
        found = [e for e in self.list_experiments() if e.name == name]
        if not found:
            raise NotFound(f"experiment {name!r} not found",
                           hint="see 'modelyard experiments list'", name=name)
        return found[0]

    @operation(Permission.READ)
    def list_experiments(
        self, *, max_results: int | None = None, page_token: str | None = None
    ) -> Page[Experiment]:
        """Experiments by name, with their run counts."""
        limit = check_max_results(max_results)
        cursor = decode_token(page_token, "experiments", 1)
        with self.db.read() as conn:
            return collect(lambda after, n: [
                Experiment(name=r.name, description=r.description or "",
                           tags=dict(r.tags or {}), created_by=r.created_by,
                           created_at=r.created_at, run_count=int(r.run_count))
                for r in repo.list_experiments(conn, cursor=after, limit=n)],
                lambda e: (e.name,), limit, cursor, kind="experiments")

    def _ensure_experiment(
        self, conn: Connection, name: str, description: str, tags: dict[str, str], who: Actor
    ) -> bool:
        check_name(name, "experiment name")
        now = self.clock()
        created = repo.insert_experiment_if_missing(conn, name=name, description=description,
                                                    tags=tags, actor=who.user, at=now)
        if created:
            audit.record(conn, at=now, actor=who, action="experiment.create",
                         after={"experiment": name, "description": description, "tags": tags})
        return created

    # -- runs ---------------------------------------------------------------------------
    @operation(Permission.CONTRIBUTE)
    def create_run(
        self, experiment: str = "default", *, name: str | None = None,
        tags: dict[str, Any] | None = None, git: dict[str, Any] | None = None,
        environment: dict[str, Any] | None = None, actor: str | None = None,
    ) -> Run:
        """Open a ``running`` run in ``experiment`` (created if missing).

        ``git`` and ``environment`` are captured by the caller (``modelyard.start_run``
        does it), since only the caller's process knows its working tree and packages.
        """
        who, now = self._actor(actor), self.clock()
        run_id = uuid.uuid4().hex
        run_name = name or f"run-{run_id[:8]}"
        clean_tags = check_tags(tags or {})
        with self.db.transaction() as conn:
            self._ensure_experiment(conn, experiment, "", {}, who)
            found = repo.find_experiment(conn, experiment)
            assert found is not None
            repo.insert_run(conn, id=run_id, experiment_id=found.id, name=run_name,
                            status=RunStatus.RUNNING.value, created_by=who.user,
                            start_time=now,
                            git=git, environment=environment or {})
            if clean_tags:
                repo.upsert_tags(conn, run_id, clean_tags)
            audit.record(conn, at=now, actor=who, action="run.start",
                         after={"run_id": run_id, "experiment": experiment, "name": run_name,
                                "git_commit": (git or {}).get("commit"), "tags": clean_tags})
        return self.get_run(run_id)

    @operation(Permission.CONTRIBUTE)
    def end_run(self, run_id: str, status: str = "finished", *, actor: str | None = None) -> Run:
        """Close a run as ``finished`` or ``failed``; ending an ended run is refused."""
        if status not in (RunStatus.FINISHED, RunStatus.FAILED):
            raise InvalidInput(f"invalid run status {status!r}: expected finished or failed")
        who, now = self._actor(actor), self.clock()
        with self.db.transaction() as conn:
            self._running(conn, run_id)
            repo.update_run(conn, run_id, status=status, end_time=now)
            audit.record(conn, at=now, actor=who, action="run.end",
                         before={"run_id": run_id, "status": RunStatus.RUNNING.value},
                         after={"run_id": run_id, "status": status})
        return self.get_run(run_id)

    @operation(Permission.READ)
    def get_run(self, run_id: str) -> Run:
        """One run: params, latest metrics, tags, inputs, artifacts, git and environment."""
        with self.db.read() as conn:
            return load_runs(conn, [self._run_row(conn, run_id)])[0]

    @operation(Permission.READ)
    def list_runs(
        self, experiment: str | None = None, filter: str | None = None, *,
        max_results: int | None = None, page_token: str | None = None,
    ) -> Page[Run]:
        """Runs, newest first, optionally of one experiment and matching the filter language.

        Fields: ``run_id``, ``name``, ``experiment``, ``status``, ``created_by``,
        ``start_time``, ``end_time``, ``git_commit``, ``datasets``, ``params.K``,
        ``metrics.K`` (latest value), ``tags.K``.
        """
        limit, cursor = check_max_results(max_results), decode_token(page_token, "runs", 2)
        expr = expressions.parse(filter, RUN_ROOTS, RUN_MAP_ROOTS) if filter else None
        pinned = expressions.equality_constraints(expr) if expr else {}
        if experiment is not None:
            check_name(experiment, "experiment name")
        elif is_name(pinned.get("experiment")):  # pushed down only if a row could hold it
            experiment = pinned["experiment"]
        status = pinned.get("status") if pinned.get("status") in _STATUSES else None
        prepared = Prepared(expr) if expr is not None else None
        with self.db.read() as conn:
            return collect(
                lambda after, n: load_runs(conn, repo.list_runs(
                    conn, experiment=experiment, status=status, cursor=after, limit=n)),
                lambda r: (r.start_time, r.run_id), limit, cursor, kind="runs",
                accept=None if prepared is None else lambda r: prepared.evaluate(
                    r.filter_context()).passed)

    @operation(Permission.READ)
    def metric_history(self, run_id: str, key: str) -> list[MetricPoint]:
        """Every logged point of one metric, in step order."""
        with self.db.read() as conn:
            self._run_row(conn, run_id)
            rows = repo.metric_history(conn, run_id, key)
        return [MetricPoint(key=r.key, value=float(r.value), step=int(r.step),
                            timestamp=r.timestamp) for r in rows]

    # -- logging ------------------------------------------------------------------------
    @operation(Permission.CONTRIBUTE)
    def log_params(self, run_id: str, params: dict[str, Any], *,
                   actor: str | None = None) -> None:
        """Params are set once: logging a different value for a logged key is refused."""
        clean = check_params(params)
        who, now = self._actor(actor), self.clock()
        with self.db.transaction() as conn:
            self._running(conn, run_id)
            logged = repo.params_of(conn, run_id)
            for key, value in clean.items():
                if key in logged and logged[key] != value:
                    raise InvalidInput(
                        f"param {key!r} of run {run_id} is already {logged[key]!r}; params "
                        "are set once per run", hint="log a metric or a tag for changing values",
                    )
            new = {k: v for k, v in clean.items() if k not in logged}
            if new:
                repo.insert_params(conn, run_id, new)
                audit.record(conn, at=now, actor=who, action="run.params",
                             after={"run_id": run_id, "params": new})

    @operation(Permission.CONTRIBUTE)
    def log_metrics(self, run_id: str, metrics: dict[str, Any], *, step: int | None = None,
                    actor: str | None = None) -> None:
        """Append one point per metric; without ``step``, each key's next step (0, 1, …)."""
        clean = check_metrics(metrics)
        if step is not None:
            step = check_number(step, "step", low=0, high=MAX_VERSION)  # an INTEGER column
        self._actor(actor)
        now = self.clock()
        with self.db.transaction() as conn:
            self._running(conn, run_id)
            steps = (repo.next_steps(conn, run_id, clean) if step is None
                     else dict.fromkeys(clean, step))
            # Metric points are append-only rows with their own time and step, so they are
            # their own record; auditing each would put every training step on the global
            # audit-chain lock. The run's start, end, params, inputs and artifacts are audited.
            repo.insert_metrics(conn, [
                {"run_id": run_id, "key": k, "value": v, "step": steps[k], "timestamp": now}
                for k, v in clean.items()
            ])

    @operation(Permission.CONTRIBUTE)
    def set_run_tags(self, run_id: str, tags: dict[str, Any], *,
                     actor: str | None = None) -> None:
        """Merge tags into a run's tags (allowed after the run ended, unlike the rest)."""
        clean = check_tags(tags)
        who, now = self._actor(actor), self.clock()
        with self.db.transaction() as conn:
            self._run_row(conn, run_id)
            repo.upsert_tags(conn, run_id, clean)
            audit.record(conn, at=now, actor=who, action="run.tags",
                         after={"run_id": run_id, "tags": clean})

    @operation(Permission.CONTRIBUTE)
    def record_run_input(self, run_id: str, ref: str | DataInput, *,
                         actor: str | None = None) -> dict[str, Any]:
        """Record a dataset the run read: ``datasets:/N/V`` or data described by digest
        (``log_run_input`` describes a path or pointer first)."""
        dataset = self.datasets.dataset_input(ref)
        who, now = self._actor(actor), self.clock()
        with self.db.transaction() as conn:
            self._running(conn, run_id)
            if repo.insert_input_if_missing(conn, run_id, dataset, now):
                audit.record(conn, at=now, actor=who, action="run.input",
                             after={"run_id": run_id, "dataset": dataset})
        return dataset

    @operation(Permission.CONTRIBUTE)
    def record_run_artifact(
        self, run_id: str, content: StoredContent, artifact_path: str, *,
        flavor: str | None = None, actor: str | None = None,
    ) -> RunArtifact:
        """Record content already in the store as ``runs:/<run_id>/<artifact_path>``
        (``log_run_artifact`` stores a path first)."""
        target = check_path(artifact_path)
        check_present(self.store, content)
        artifact = RunArtifact(path=target, digest=content.digest, kind=content.kind,
                               artifact_name=content.name, size=content.size,
                               file_count=content.file_count, flavor=flavor)
        who, now = self._actor(actor), self.clock()
        with self.db.transaction() as conn:
            self._running(conn, run_id)
            before = repo.upsert_artifact(conn, run_id=run_id, created_at=now,
                                          **artifact.to_dict())
            audit.record(conn, at=now, actor=who, action="run.artifact",
                         before={"run_id": run_id, "path": target, "digest": before.digest}
                         if before else None,
                         after={"run_id": run_id, "path": target, "digest": content.digest})
        return artifact

    @operation(Permission.READ)
    def check_running(self, run_id: str) -> None:
        """Raise unless the run is open for logging (checked before content is stored)."""
        with self.db.read() as conn:
            self._running(conn, run_id)

    @operation(Permission.READ)
    def run_artifact(self, uri: str) -> tuple[Run, RunArtifact]:
        """The run and artifact named by ``runs:/<run_id>/<path>``."""
        run_id, path = parse_run_uri(uri)
        run = self.get_run(run_id)
        for artifact in run.artifacts:
            if artifact.path == path:
                return run, artifact
        raise NotFound(f"run {run_id} has no artifact {path!r}",
                       hint=f"see 'modelyard runs show {run_id}'", run_id=run_id, path=path)

    # -- lookups ------------------------------------------------------------------------
    def _run_row(self, conn: Connection, run_id: str) -> repo.RunRow:
        row = repo.find_run(conn, check_run_id(run_id))
        if row is None:
            raise NotFound(f"run {run_id} not found", hint="see 'modelyard runs list'",
                           run_id=run_id)
        return row

    def _running(self, conn: Connection, run_id: str) -> repo.RunRow:
        row = self._run_row(conn, run_id)
        if row.status != RunStatus.RUNNING:
            raise InvalidTransition(f"run {run_id} is {row.status}; only a running run "
                                    "can be logged to or ended", run_id=run_id)
        return row


def load_runs(conn: Connection, rows: list[repo.RunRow]) -> list[Run]:
    """Whole ``Run`` records for ``rows``, with a fixed number of queries for any count."""
    ids = [r.id for r in rows]
    params, metrics = repo.params_of_runs(conn, ids), repo.latest_metrics(conn, ids)
    tags, inputs = repo.tags_of_runs(conn, ids), repo.inputs_of_runs(conn, ids)
    artifacts = repo.artifacts_of_runs(conn, ids)
    return [
        Run(run_id=r.id, experiment=r.experiment, name=r.name, status=r.status,
            created_by=r.created_by, start_time=r.start_time, end_time=r.end_time,
            params=params.get(r.id, {}), metrics=metrics.get(r.id, {}), tags=tags.get(r.id, {}),
            git=r.git, environment=dict(r.environment or {}), datasets=inputs.get(r.id, []),
            artifacts=[RunArtifact(path=a.path, digest=a.digest, kind=a.kind,
                                   artifact_name=a.artifact_name, size=int(a.size),
                                   file_count=int(a.file_count), flavor=a.flavor)
                       for a in artifacts.get(r.id, [])])
        for r in rows
    ]


def _experiment_exists(name: str) -> AlreadyExists:
    return AlreadyExists(f"experiment {name!r} already exists", name=name)
