"""Models, a model, its history and rollback, a version, a comparison, downloads."""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable
from typing import Any

from fastapi import Request, Response

from modelyard.domain.entities import AuditEvent, ModelVersion
from modelyard.domain.principal import Permission
from modelyard.domain.times import parse_time
from modelyard.errors import InvalidInput
from modelyard.server import content_routes
from modelyard.services.charts import Charts, MetricSample
from modelyard.storage.content.manifest import Entry
from modelyard.web import paths, svg
from modelyard.web.views import (
    ENV,
    PAGE_SIZE,
    SECURITY_HEADERS,
    Posting,
    SignedIn,
    Visit,
    page_router,
    redirect,
    render,
    url,
)

routes = page_router()
METRIC_COLUMNS = 4  # key metrics shown per version in the table
MAX_FILES = 1000  # files listed on a version page
TIMELINE = frozenset({"version.transition", "version.rollback", "promotion.direct",
                      "alias.set", "alias.delete", "version.delete", "policy.set",
                      "request.create", "request.approve", "request.reject", "request.applied",
                      "request.cancelled"})


@routes.get("/models")
def models_page(request: Request, v: SignedIn, q: str = "",
                page_token: str | None = None) -> Response:
    """Every model, or (with ``q``) the versions matching a filter expression."""
    reg = v.registry
    if q.strip():
        try:
            found = reg.search_versions(q, max_results=PAGE_SIZE, page_token=page_token)
        except InvalidInput as error:
            return render(request, "models.html", http_status=400, query=q, search_error=error,
                          versions=[], models=[], pending={}, next_token=None, metrics=[])
        return render(request, "models.html", query=q, search_error=None, versions=found,
                      models=[], pending={}, next_token=found.next_page_token,
                      metrics=metric_keys(found))
    models = reg.list_models(max_results=PAGE_SIZE, page_token=page_token)
    pending = Counter(r.name for r in reg.list_requests(status="pending"))
    return render(request, "models.html", query="", search_error=None, versions=[],
                  models=models, pending=pending, next_token=models.next_page_token, metrics=[])


def metric_keys(versions: Iterable[ModelVersion]) -> list[str]:
    """Metric names in the order they first appear."""
    keys: dict[str, None] = {}
    for version in versions:
        keys.update(dict.fromkeys(version.metrics))
    return list(keys)


@routes.get("/models/{name}")
def model_page(request: Request, v: SignedIn, name: str, page_token: str | None = None,
               metric: str | None = None, at: str | None = None) -> Response:
    """A model at a glance: production, latest, aliases, policy, pending requests, a page
    of versions (newest first) with key metrics, a chart of one metric across versions,
    and (given ``at``) what was in production then."""
    reg = v.registry
    then = reg.history(name, at=parse_time(at)) if at else None
    model = reg.get_model(name)
    versions = reg.list_versions(name, descending=True, max_results=PAGE_SIZE,
                                 page_token=page_token)
    listed = {x.version: x for x in versions}

    def version(number: int | None) -> ModelVersion | None:  # read only if not listed
        return None if number is None else listed.get(number) or reg.get_version(name, number)

    production, latest = version(model.production_version), version(model.latest_version)
    shown = [x for x in (production, latest) if x is not None] + versions
    keys = metric_keys(shown)
    chosen = metric or (keys[0] if keys else None)
    return render(request, "model.html", model=model, versions=versions, production=production,
                  latest=latest, policy=reg.get_policy(name), columns=keys[:METRIC_COLUMNS],
                  metric_choices=keys, metric=chosen,
                  pending=reg.list_requests(name, status="pending"),
                  next_token=versions.next_page_token, at=at or "", then=then,
                  may_roll_back=v.can(Permission.CONTRIBUTE) and production is not None)


@routes.get("/models/{name}/chart.svg")
def model_chart(v: SignedIn, name: str, metric: str) -> Response:
    """``metric`` across the model's versions (a bounded sample of a long history), the
    production version marked."""
    sample = Charts(v.registry.ctx).metric_sample(name, metric)
    body = ENV.get_template("chart.svg").render(chart=version_chart(sample, name, metric),
                                                standalone=True)
    return Response(body, media_type="image/svg+xml", headers=SECURITY_HEADERS)


def version_chart(sample: MetricSample, name: str, metric: str) -> svg.Chart:
    versions = paths.version(name, "")  # quoted once, not once per point of 500
    data = [svg.Datum(p.version, p.value, f"v{p.version}: {metric} = {p.value:.6g}"
                      + (" (production)" if p.production else ""),
                      f"{versions}{p.version}", p.production)
            for p in sample.points]
    title = f"{metric} by version" + (
        f" (1 in {sample.every} of {sample.versions:,} versions)" if sample.every > 1 else "")
    return svg.line_chart(data, title=title, x_label="version")


@routes.get("/models/{name}/history")
def history_page(request: Request, v: SignedIn, name: str, at: str | None = None) -> Response:
    """Who moved what, when, with which comment; the policy versions; and, given a time,
    what was in production then."""
    reg = v.registry
    model = reg.get_model(name)
    state = reg.history(name)
    then = reg.history(name, at=parse_time(at)) if at else None
    policy = reg.get_policy(name)
    policies = [reg.get_policy(name, n) for n in range(policy.policy_version, 0, -1)]
    return render(request, "history.html", model=model, timeline=timeline(state.events),
                  then=then, at=at or "", policies=policies or [policy])


def timeline(events: Iterable[AuditEvent]) -> list[AuditEvent]:
    """The lifecycle and governance events, newest first."""
    return [e for e in reversed(list(events)) if e.action in TIMELINE]


@routes.get("/models/{name}/rollback")
def rollback_page(request: Request, v: SignedIn, name: str) -> Response:
    """What a rollback would do, and the button that does it."""
    reg = v.registry
    model = reg.get_model(name)
    production = reg.get_version(name, "production") if model.production_version else None
    return render(request, "rollback.html", model=model, production=production,
                  policy=reg.get_policy(name), allowed=v.can(Permission.CONTRIBUTE))


@routes.post("/models/{name}/rollback")
def rollback(posted: Posting, name: str) -> Response:
    reg = posted.visit.registry
    posted.act("rollback", lambda: reg.rollback(name, comment=posted.get("comment")))
    return redirect(url(paths.model(name), notice="rolled-back"))


@routes.get("/models/{name}/versions/{ref}")
def version_page(request: Request, v: SignedIn, name: str, ref: str) -> Response:
    """One version: metadata, files, lineage graph, signature, and a comparison form."""
    reg = v.registry
    found = reg.get_version(name, ref)
    lineage = reg.lineage(name, found.version)
    files = version_files(v, found)
    return render(request, "version.html", version=found, lineage=lineage,
                  graph=svg.lineage_graph(lineage), files=files[:MAX_FILES],
                  file_total=len(files), compare_with=_compare_default(found))


def version_files(v: Visit, version: ModelVersion) -> list[Entry]:
    """The files of a version: its manifest, read (verified) from the store. There is no
    registry operation for this yet; reading content needs the read permission, checked
    here exactly as the content routes check it."""
    v.principal.require(Permission.READ, "read content")
    if version.artifact_kind == "dir":
        return list(v.registry.store.get_manifest(version.digest))
    return [Entry(version.artifact_name or version.name, version.digest, version.size)]


def _compare_default(version: ModelVersion) -> int | None:
    parent = version.lineage.get("parent")
    if isinstance(parent, dict) and parent.get("name") == version.name:
        return int(parent["version"])
    return version.version - 1 if version.version > 1 else None


@routes.get("/models/{name}/versions/{ref}/compare")
def compare_page(request: Request, v: SignedIn, name: str, ref: str, other: str) -> Response:
    """How this version differs from ``other``: params, metrics, data, code, files."""
    reg = v.registry
    found = reg.get_version(name, ref)
    diff = reg.diff(name, other, found.version)
    return render(request, "compare.html", version=found, diff=diff)


@routes.get("/download/{digest}")
def download(request: Request, v: SignedIn, digest: str, name: str = "download") -> Response:
    """A file by digest, through the REST content route (verified, with ranges) as the
    session's principal, saved under ``name``."""
    scope: dict[str, Any] = dict(request.scope)
    scope["headers"] = [*(h for h in request.scope["headers"] if h[0] != b"authorization"),
                        (b"authorization", f"Bearer {v.session}".encode())]
    response = content_routes.get_content(Request(scope, request.receive), digest)
    response.headers["content-disposition"] = _attachment(name)
    return response


def _attachment(name: str) -> str:
    """A download's file name, reduced to printable ASCII without quotes or slashes."""
    plain = "".join(c if c.isascii() and c.isprintable() and c not in '"\\/' else "_"
                    for c in name.rpartition("/")[2]) or "download"
    return f'attachment; filename="{plain}"'
