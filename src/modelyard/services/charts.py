"""A metric across a model's versions, sampled so the query stays bounded.

The model page's chart must not load every version of a model with 10,000 of them: the
query here reads at most ``limit`` evenly spaced versions (every k-th by number) plus the
production and the latest one, only their number, stage and metrics. Each point drawn is
then a real version (a tooltip and a link), and the caller says when it is a sample.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from sqlalchemy import func, or_, select

from modelyard.domain.principal import Permission
from modelyard.services.base import UseCase
from modelyard.storage.sql.schema import model_versions as mv

CHART_POINTS = 500  # versions a chart reads at most (plus production and the latest)


@dataclass(frozen=True)
class MetricPoint:
    version: int
    value: float
    production: bool


@dataclass(frozen=True)
class MetricSample:
    """The versions read (those with the metric), one in ``every`` of ``versions``."""

    points: list[MetricPoint]
    every: int
    versions: int


class Charts(UseCase):
    def metric_sample(self, name: str, metric: str, limit: int | None = None) -> MetricSample:
        """``metric`` of every ``every``-th live version of ``name`` (every one when there
        are at most ``limit``, by default ``CHART_POINTS``), with the production and latest
        versions always in."""
        self.principal.require(Permission.READ, "read versions")
        limit = limit or CHART_POINTS
        with self.db.read() as conn:
            model = self._model(conn, name)
            live = (mv.c.model_id == model.id, mv.c.deleted_at.is_(None))
            count, last = conn.execute(
                select(func.count(), func.max(mv.c.version)).where(*live)).one()
            every = max(1, math.ceil((last or 0) / limit))
            query = select(mv.c.version, mv.c.stage, mv.c.metrics).where(*live)
            if every > 1:
                query = query.where(or_(mv.c.version % every == 0, mv.c.version == last,
                                        mv.c.stage == "production"))
            rows = conn.execute(query.order_by(mv.c.version)).all()
        points = [MetricPoint(int(r.version), float(r.metrics[metric]), r.stage == "production")
                  for r in rows if isinstance((r.metrics or {}).get(metric), int | float)]
        return MetricSample(points, every, int(count))
