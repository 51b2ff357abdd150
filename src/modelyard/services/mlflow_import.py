"""Bring an MLflow registry over: models, versions, their source runs, tags, aliases, stages.

MLflow is read through its REST API only (``MlflowSource``, httpx), so any tracking server
works and no ``mlflow`` package is needed. Everything is written through the registry's
public operations as the importing principal (``register`` for content, so every byte is
hashed and content-addressed like any other version, ``transition`` for stages, so the
model's approval policy still decides production), on an embedded or a remote registry.

Each version is one ``register``; what MLflow recorded about it (its name and number, who
created it and when, its source and run) goes into its lineage under ``imported`` and so
into the audited ``version.register`` event: the facts are kept as facts, while the event's
actor and time stay the importer's. An imported model and run carry theirs as
``modelyard.import.*`` tags (in their audited creation events too). A version or run
already imported is found by those records, so a second import copies nothing, and an
interrupted one resumes where it stopped: what is missing is added (metric points past
those already copied, artifacts not yet logged, tags, aliases, stages, descriptions), and
nothing set in Modelyard since is overwritten.
"""

from __future__ import annotations

import math
import os
import tempfile
from collections.abc import Callable, Iterable, Iterator
from contextlib import suppress
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import quote, urlparse, urlunparse

import httpx

from modelyard.domain.codec import Record
from modelyard.domain.entities import ModelVersion
from modelyard.domain.names import check_alias, check_tags, is_name
from modelyard.domain.runs import Run
from modelyard.domain.stages import Stage
from modelyard.errors import (
    AlreadyExists,
    ApprovalRequired,
    InvalidInput,
    InvalidTransition,
    ModelyardError,
    NotFound,
    StorageUnavailable,
)
from modelyard.services.registry import RegistryApi
from modelyard.storage.content.manifest import check_path

Progress = Callable[[int, int, str], None]
"""``progress(done, total, label)``: versions copied so far, of how many, and which."""

IMPORTED = "imported"  # the lineage key of an imported version
FACT_TAG = "modelyard.import."  # the facts tagged on an imported model or run
_PROXY = "/api/2.0/mlflow-artifacts/artifacts"
_STAGES = {"None": Stage.NONE, "Staging": Stage.STAGING, "Production": Stage.PRODUCTION,
           "Archived": Stage.ARCHIVED}
_PATHS = {Stage.STAGING: [Stage.STAGING], Stage.PRODUCTION: [Stage.STAGING, Stage.PRODUCTION],
          Stage.ARCHIVED: [Stage.ARCHIVED]}
_ENDED = {"FINISHED": "finished", "FAILED": "failed", "KILLED": "failed"}
_NUMBERS = {"NaN": math.nan, "Infinity": math.inf, "-Infinity": -math.inf}


@dataclass
class ImportReport(Record):
    """What an import copied, what it found already there, and what it could not map."""

    computed = ("copied_nothing",)
    source: str
    dry_run: bool
    models: int = 0
    versions: int = 0
    runs: int = 0
    bytes: int = 0
    already_imported: int = 0
    updates: int = 0
    """Tags, aliases, stages and descriptions set on models and versions already there."""
    renumbered: list[dict[str, Any]] = field(default_factory=list)
    """``{"name", "mlflow_version", "version"}`` where the numbers differ."""
    unmapped: list[dict[str, str]] = field(default_factory=list)
    """``{"what", "why"}`` for each thing that was not copied as MLflow had it."""

    @property
    def copied_nothing(self) -> bool:
        return not (self.models or self.versions or self.runs or self.updates)


class Unmappable(Exception):
    """Something of MLflow's that has no faithful place here; the report says why."""


class MlflowSource:
    """The read side of MLflow's REST API on a tracking server (``--tracking-uri``)."""

    def __init__(self, tracking_uri: str, *, token: str | None = None,
                 client: httpx.Client | None = None) -> None:
        parsed = urlparse(tracking_uri)
        if parsed.scheme not in ("http", "https") or not parsed.hostname:
            raise InvalidInput(f"invalid MLflow tracking URI {tracking_uri!r}",
                               hint="pass the tracking server's URL, http(s)://HOST:PORT")
        self.uri = urlunparse(parsed._replace(netloc=parsed.hostname + (
            f":{parsed.port}" if parsed.port else ""))).rstrip("/")  # no credentials
        auth = httpx.BasicAuth(parsed.username, parsed.password or "") if parsed.username \
            else None
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        self.http = client or httpx.Client(base_url=self.uri, headers=headers, auth=auth,
                                           timeout=60, follow_redirects=True)

    def close(self) -> None:
        self.http.close()

    def _get(self, route: str, **params: Any) -> Any:
        try:
            response = self.http.get(route, params={k: v for k, v in params.items()
                                                    if v is not None})
        except httpx.HTTPError as exc:
            raise StorageUnavailable(f"MLflow at {self.uri} is unreachable: {exc}",
                                     hint="check --tracking-uri and that the server runs"
                                     ) from None
        if response.status_code == 404 and _code(response) == "RESOURCE_DOES_NOT_EXIST":
            raise NotFound(f"not in MLflow: {_message(response)}")
        if response.status_code != 200:
            raise StorageUnavailable(
                f"MLflow at {self.uri} answered {response.status_code} to {route}: "
                f"{_message(response)}")
        return response.json()

    def _pages(self, path: str, key: str, **params: Any) -> Iterator[dict[str, Any]]:
        token = None
        while True:
            body = self._get(path, page_token=token, **params)
            yield from body.get(key, [])
            token = body.get("next_page_token")
            if not token:
                return

    def models(self) -> Iterator[dict[str, Any]]:
        return self._pages("/api/2.0/mlflow/registered-models/search", "registered_models",
                           max_results=100)

    def versions(self, name: str) -> list[dict[str, Any]]:
        """Every version of ``name``, oldest first."""
        found = self._pages("/api/2.0/mlflow/model-versions/search", "model_versions",
                            filter=f"name = '{name}'", max_results=1000)
        return sorted(found, key=lambda v: int(v["version"]))

    def download_uri(self, name: str, version: str) -> str:
        return str(self._get("/api/2.0/mlflow/model-versions/get-download-uri", name=name,
                             version=version)["artifact_uri"])

    def run(self, run_id: str) -> dict[str, Any]:
        return dict(self._get("/api/2.0/mlflow/runs/get", run_id=run_id)["run"])

    def experiment_name(self, experiment_id: str) -> str:
        return str(self._get("/api/2.0/mlflow/experiments/get",
                             experiment_id=experiment_id)["experiment"]["name"])

    def metric_history(self, run_id: str, key: str) -> list[dict[str, Any]]:
        """Every point of one metric, in step and then time order."""
        points = self._pages("/api/2.0/mlflow/metrics/get-history", "metrics", run_id=run_id,
                             metric_key=key, max_results=25_000)
        return sorted(points, key=lambda p: (int(p.get("step") or 0), int(p["timestamp"])))

    def files(self, location: str, path: str = "") -> list[tuple[str, int]]:
        """Every file under an artifact location, (path below it, size), recursively."""
        root = _proxy_path(location)
        found: list[tuple[str, int]] = []
        listed = self._get(_PROXY, path=f"{root}/{path}".rstrip("/"))
        for entry in listed.get("files", []):
            below = check_path(f"{path}/{entry['path']}" if path else entry["path"])
            if entry.get("is_dir"):
                found.extend(self.files(location, below))
            else:
                found.append((below, int(entry.get("file_size") or 0)))
        return found

    def download(self, location: str, files: Iterable[tuple[str, int]], dest: Path) -> int:
        """Write the files under ``dest``, each checked against the size MLflow lists."""
        root, total = _proxy_path(location), 0
        for path, size in files:
            target = dest / check_path(path)
            target.parent.mkdir(parents=True, exist_ok=True)
            url = f"{_PROXY}/{quote(f'{root}/{path}')}"
            try:
                with self.http.stream("GET", url) as response, open(target, "wb") as out:
                    if response.status_code != 200:
                        raise StorageUnavailable(f"MLflow answered {response.status_code} "
                                                 f"for artifact {path!r} of {location}")
                    for piece in response.iter_bytes():
                        out.write(piece)
            except httpx.HTTPError as exc:
                raise StorageUnavailable(f"downloading {path!r} of {location} from MLflow "
                                         f"failed: {exc}") from None
            written = target.stat().st_size
            if written != size:
                raise StorageUnavailable(f"artifact {path!r} of {location} arrived with "
                                         f"{written} bytes; MLflow lists {size}")
            total += written
        return total


def _code(response: httpx.Response) -> str:
    try:
        return str(response.json().get("error_code", ""))
    except ValueError:
        return ""


def _message(response: httpx.Response) -> str:
    try:
        return str(response.json().get("message", ""))[:300]
    except ValueError:
        return response.text[:300]


def _proxy_path(location: str) -> str:
    """The proxy path of an ``mlflow-artifacts:`` location; other stores are not reachable
    through the tracking server, so they cannot be copied from here."""
    parsed = urlparse(location)
    if parsed.scheme == "mlflow-artifacts":
        return parsed.path.strip("/")
    if parsed.scheme in ("http", "https") and _PROXY + "/" in parsed.path:
        return parsed.path.split(_PROXY + "/", 1)[1].strip("/")
    raise Unmappable(f"its artifacts are at {location!r}, which the tracking server does "
                     "not serve (run 'mlflow server' with --serve-artifacts, the default)")


def _millis(value: Any) -> str | None:
    return (datetime.fromtimestamp(int(value) / 1000, UTC).isoformat()
            if value not in (None, "") else None)


def _pairs(records: Iterable[dict[str, Any]] | None) -> dict[str, str]:
    return {str(r["key"]): str(r.get("value", "")) for r in records or []}


@dataclass
class _Plan:
    """One model's versions still to copy, and the versions imported before."""

    model: dict[str, Any]
    pending: list[dict[str, Any]]
    done: dict[str, ModelVersion]  # MLflow version number -> the imported version


class MlflowImport:
    """``run`` copies an MLflow registry into ``registry`` (see the module docstring)."""

    def __init__(self, registry: RegistryApi, source: MlflowSource) -> None:
        self.registry, self.source = registry, source
        self._runs: dict[str, str] = {}  # MLflow run id -> imported run id
        self._run_index: dict[str, dict[str, Run]] = {}  # experiment -> tag -> run
        self._planned: set[str] = set()  # MLflow runs a dry run counted

    def run(self, models: Iterable[str] = (), *, dry_run: bool = False,
            progress: Progress | None = None) -> ImportReport:
        """Import ``models`` (default: every registered model); ``dry_run`` writes nothing
        and reports what would be copied."""
        report = ImportReport(self.source.uri, dry_run)
        wanted = set(models)
        found = [m for m in self.source.models() if not wanted or m["name"] in wanted]
        for missing in sorted(wanted - {m["name"] for m in found}):
            report.unmapped.append({"what": f"model {missing!r}",
                                    "why": "MLflow has no registered model of that name"})
        plans = [p for p in (self._plan(m, report) for m in found) if p is not None]
        total, done = sum(len(p.pending) for p in plans), 0
        for plan in plans:
            if dry_run:
                self._dry_run(plan, report)
                continue
            try:
                self._ensure_model(plan.model, report)
            except AlreadyExists as why:  # deleted here: its name stays reserved
                report.unmapped.append({"what": f"model {plan.model['name']!r}",
                                        "why": why.message})
                continue
            for record in plan.pending:
                if progress is not None:
                    progress(done, total, f"{record['name']} v{record['version']}")
                self._copy_version(record, plan, report)
                done += 1
            self._fill_in(plan, report)
        if progress is not None:
            progress(done, total, "done")
        return report

    # -- planning -----------------------------------------------------------------------
    def _plan(self, model: dict[str, Any], report: ImportReport) -> _Plan | None:
        name = model["name"]
        if not is_name(name):
            report.unmapped.append({"what": f"model {name!r}", "why": (
                "not a valid Modelyard name (1-128 of A-Z a-z 0-9 . _ -, starting with a "
                "letter or digit)")})
            return None
        done: dict[str, ModelVersion] = {}
        try:
            for v in self.registry.list_versions(name):
                imported = v.lineage.get(IMPORTED) or {}
                if imported.get("from") == "mlflow" and imported.get("name") == name:
                    done[str(imported.get("version"))] = v
        except NotFound:
            pass
        versions = self.source.versions(name)
        report.already_imported += sum(str(v["version"]) in done for v in versions)
        return _Plan(model, [v for v in versions if str(v["version"]) not in done], done)

    def _dry_run(self, plan: _Plan, report: ImportReport) -> None:
        if not plan.done and not self._exists(plan.model["name"]):
            report.models += 1
        for record in plan.pending:
            try:
                files = self.source.files(self.source.download_uri(record["name"],
                                                                   record["version"]))
            except Unmappable as why:
                report.unmapped.append({"what": _what(record), "why": str(why)})
                continue
            report.versions += 1
            report.bytes += sum(size for _, size in files)
            if record.get("run_id") and record["run_id"] not in self._planned:
                self._planned.add(record["run_id"])
                self._plan_run(record["run_id"], report)

    def _plan_run(self, mlflow_run_id: str, report: ImportReport) -> None:
        """Count a run a real import would copy, with its artifacts' bytes."""
        try:
            info = self.source.run(mlflow_run_id)["info"]
        except NotFound:
            return
        experiment = self._experiment(str(info["experiment_id"]), report)
        if self._imported_run(experiment, mlflow_run_id) is not None:
            return
        report.runs += 1
        with suppress(Unmappable):
            report.bytes += sum(size for _, size in self.source.files(
                info.get("artifact_uri") or ""))

    def _exists(self, name: str) -> bool:
        try:
            self.registry.get_model(name)
            return True
        except NotFound:
            return False

    # -- models ---------------------------------------------------------------------------
    def _ensure_model(self, model: dict[str, Any], report: ImportReport) -> None:
        if self._exists(model["name"]):
            return
        facts = {"source": "mlflow", "tracking_uri": self.source.uri,
                 "created_by": model.get("user_id") or "",
                 "created_at": _millis(model.get("creation_timestamp")) or ""}
        tags = self._tags(_pairs(model.get("tags")), f"model {model['name']!r}", report)
        self.registry.create_model(model["name"], description=model.get("description") or "",
                                   tags={**tags, **{FACT_TAG + k: v for k, v in facts.items()
                                                    if v}})
        report.models += 1

    def _fill_in(self, plan: _Plan, report: ImportReport) -> None:
        """Model tags, description and aliases MLflow has and Modelyard lacks; stages of
        the versions imported (never one moved in Modelyard since)."""
        name = plan.model["name"]
        current = self.registry.get_model(name)
        imported = {str((v.lineage.get(IMPORTED) or {}).get("version")): v
                    for v in self.registry.list_versions(name)
                    if (v.lineage.get(IMPORTED) or {}).get("from") == "mlflow"}
        tags = self._tags(_pairs(plan.model.get("tags")), f"model {name!r}", report)
        missing = {k: v for k, v in tags.items() if k not in current.tags}
        if missing:
            self.registry.set_tags(name, missing)
            report.updates += 1
        if plan.model.get("description") and not current.description:
            self.registry.set_description(name, plan.model["description"])
            report.updates += 1
        for entry in plan.model.get("aliases") or []:
            alias, number = entry["alias"], str(entry["version"])
            what = f"alias @{alias} of {name!r}"
            if number not in imported:
                report.unmapped.append({"what": what, "why": f"it points at MLflow version "
                                        f"{number}, which was not imported"})
            elif alias not in current.aliases:
                try:
                    self.registry.set_alias(name, check_alias(alias), imported[number].version)
                    report.updates += 1
                except InvalidInput as why:
                    report.unmapped.append({"what": what, "why": why.message})
        self._stages(name, imported, report)

    def _stages(self, name: str, imported: dict[str, ModelVersion],
                report: ImportReport) -> None:
        records = {str(v["version"]): v for v in self.source.versions(name)}
        in_production = [n for n, r in records.items()
                         if r.get("current_stage") == "Production" and n in imported]
        keep = max(in_production, key=int, default=None)
        for number, version in sorted(imported.items(), key=lambda item: int(item[0])):
            record = records.get(number)
            if record is None:
                continue
            target = _STAGES.get(record.get("current_stage") or "None", Stage.NONE)
            if target is Stage.PRODUCTION and number != keep:
                report.unmapped.append({"what": _what(record), "why": (
                    f"MLflow has versions {', '.join(sorted(in_production, key=int))} in "
                    f"Production; Modelyard keeps one production ({keep}), so this one is "
                    "archived")})
                target = Stage.ARCHIVED
            if target is Stage.NONE:
                continue
            path = _PATHS[target]
            current = Stage(self.registry.get_version(name, version.version).stage)
            steps = (path if current is Stage.NONE else
                     path[path.index(current) + 1:] if current in path[:-1] else [])
            for step in steps:
                try:
                    self.registry.transition(name, version.version, step, comment=(
                        f"imported from MLflow ({self.source.uri}): "
                        f"{record.get('current_stage')} there"))
                    report.updates += 1
                except (ApprovalRequired, InvalidTransition) as why:
                    report.unmapped.append({"what": _what(record), "why": (
                        f"{record.get('current_stage')} in MLflow, {step.value} refused "
                        f"here: {why.message}" + (f" ({why.hint})" if why.hint else ""))})
                    break

    # -- versions -------------------------------------------------------------------------
    def _copy_version(self, record: dict[str, Any], plan: _Plan,
                      report: ImportReport) -> None:
        name, number = record["name"], str(record["version"])
        try:
            location = self.source.download_uri(name, number)
            files = self.source.files(location)
            if not files:
                raise Unmappable(f"MLflow holds no files at {location}")
            run_id = self._copy_run(record["run_id"], report) if record.get("run_id") else None
        except Unmappable as why:
            report.unmapped.append({"what": _what(record), "why": str(why)})
            return
        facts = {"from": "mlflow", "tracking_uri": self.source.uri, "name": name,
                 "version": number, "created_by": record.get("user_id") or None,
                 "created_at": _millis(record.get("creation_timestamp")),
                 "source": record.get("source"), "run_id": record.get("run_id"),
                 "model_id": record.get("model_id")}
        tags = self._tags(_pairs(record.get("tags")), _what(record), report)
        with tempfile.TemporaryDirectory(prefix="modelyard-mlflow-import-") as spool:
            content = Path(spool) / "content"
            content.mkdir()
            report.bytes += self.source.download(location, files, content)
            made = self.registry.register(
                name, content, tags=tags, description=record.get("description") or "",
                run=run_id, lineage={IMPORTED: {k: v for k, v in facts.items()
                                                if v is not None}})
        plan.done[number] = made
        report.versions += 1
        if str(made.version) != number:
            report.renumbered.append({"name": name, "mlflow_version": number,
                                      "version": made.version})

    # -- runs -----------------------------------------------------------------------------
    def _copy_run(self, mlflow_run_id: str, report: ImportReport) -> str | None:
        """The imported copy of an MLflow run (made or completed now), or None when MLflow
        no longer has it (the version is imported without lineage to a run)."""
        if mlflow_run_id in self._runs:
            return self._runs[mlflow_run_id]
        try:
            record = self.source.run(mlflow_run_id)
        except NotFound:
            report.unmapped.append({"what": f"run {mlflow_run_id}",
                                    "why": "MLflow no longer has it"})
            return None
        info, data = record["info"], record.get("data") or {}
        experiment = self._experiment(str(info["experiment_id"]), report)
        run = self._imported_run(experiment, mlflow_run_id)
        if run is None:
            facts = {"source": "mlflow", "tracking_uri": self.source.uri,
                     "run_id": mlflow_run_id, "user": info.get("user_id") or "",
                     "start_time": _millis(info.get("start_time")) or "",
                     "end_time": _millis(info.get("end_time")) or "",
                     "status": info.get("status") or ""}
            tags = self._tags(_pairs(data.get("tags")), f"run {mlflow_run_id}", report)
            run = self.registry.create_run(experiment, name=_run_name(info), tags={
                **tags, **{FACT_TAG + k: v for k, v in facts.items() if v}})
            report.runs += 1
        if run.status == "running":
            self._complete_run(run, mlflow_run_id, info, data, report)
        self._runs[mlflow_run_id] = run.run_id
        return run.run_id

    def _experiment(self, experiment_id: str, report: ImportReport) -> str:
        if experiment_id == "0":
            return "default"  # MLflow's default experiment is the registry's
        name = self.source.experiment_name(experiment_id)
        if is_name(name):
            return name
        report.unmapped.append({"what": f"experiment {name!r}", "why": (
            f"not a valid Modelyard name; its runs are in 'mlflow-{experiment_id}'")})
        return f"mlflow-{experiment_id}"

    def _imported_run(self, experiment: str, mlflow_run_id: str) -> Run | None:
        if experiment not in self._run_index:
            try:
                runs = list(self.registry.list_runs(experiment))
            except NotFound:
                runs = []
            self._run_index[experiment] = {r.tags[FACT_TAG + "run_id"]: r for r in runs
                                           if FACT_TAG + "run_id" in r.tags}
        return self._run_index[experiment].get(mlflow_run_id)

    def _complete_run(self, run: Run, mlflow_run_id: str, info: dict[str, Any],
                      data: dict[str, Any], report: ImportReport) -> None:
        """Log what the run lacks (a resumed import finds part of it), then end it as
        MLflow ended it."""
        params = {k: v for k, v in _pairs(data.get("params")).items() if k not in run.params}
        if params:
            self.registry.log_params(run.run_id, params)
        for key in sorted({str(m["key"]) for m in data.get("metrics") or []}):
            self._copy_metric(run.run_id, mlflow_run_id, key, report)
        logged = {a.path for a in run.artifacts}
        try:
            location = info.get("artifact_uri") or ""
            files = self.source.files(location) if location else []
        except Unmappable as why:
            report.unmapped.append({"what": f"artifacts of run {mlflow_run_id}",
                                    "why": str(why)})
            files = []
        tops = sorted({path.split("/", 1)[0] for path, _ in files} - logged)
        for top in tops:
            below = [(p, s) for p, s in files if p == top or p.startswith(top + "/")]
            with tempfile.TemporaryDirectory(prefix="modelyard-mlflow-import-") as spool:
                report.bytes += self.source.download(location, below, Path(spool))
                self.registry.log_run_artifact(run.run_id, os.fspath(Path(spool) / top),
                                               artifact_path=top)
        status = _ENDED.get(str(info.get("status")))
        if status is not None:
            self.registry.end_run(run.run_id, status)

    def _copy_metric(self, run_id: str, mlflow_run_id: str, key: str,
                     report: ImportReport) -> None:
        """The points after those already copied, one call per step."""
        have = len(self.registry.metric_history(run_id, key))
        for point in self.source.metric_history(mlflow_run_id, key)[have:]:
            raw: Any = point.get("value")
            value = _NUMBERS.get(raw, raw) if isinstance(raw, str) else raw
            try:
                self.registry.log_metrics(run_id, {key: float(value)},
                                          step=int(point.get("step") or 0))
            except (InvalidInput, TypeError, ValueError) as why:
                report.unmapped.append({"what": f"metric {key!r} of run {mlflow_run_id} at "
                                        f"step {point.get('step') or 0}", "why": str(why)})
                return

    # -- shared ---------------------------------------------------------------------------
    @staticmethod
    def _tags(tags: dict[str, str], what: str, report: ImportReport) -> dict[str, str]:
        """The tags Modelyard can hold; each one refused is reported."""
        kept: dict[str, str] = {}
        for key, value in tags.items():
            try:
                kept.update(check_tags({key: value}))
            except ModelyardError as why:
                report.unmapped.append({"what": f"tag {key[:80]!r} of {what}",
                                        "why": why.message})
        return kept


def _what(record: dict[str, Any]) -> str:
    return f"version {record['version']} of {record['name']!r}"


def _run_name(info: dict[str, Any]) -> str | None:
    name = info.get("run_name")
    return name if isinstance(name, str) and name else None
