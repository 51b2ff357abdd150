"""Geometry of the server-drawn SVG: line charts and the lineage graph.

Pure functions from records to coordinates; the templates ``_chart.svg`` and
``_lineage.svg`` only place what these return, so the pictures need no JavaScript, no
charting library and nothing from the network, and the tests can check them as data.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from modelyard.domain.lineage import Lineage
from modelyard.web import paths

MAX_DOTS = 500  # beyond this a chart draws its line only (and the marked point)
MARK_LABEL = "production"
# The label's box at the template's font-size 11 in bold: a width no system font exceeds
# for this word, and its ascent and descent from the baseline.
LABEL_W, LABEL_ASCENT, LABEL_DESCENT = 72, 10, 3
MARK_R = 7  # radius of the ring around a marked point


@dataclass(frozen=True)
class Datum:
    """One value to plot: ``x`` and ``y``, a tooltip, a link, and whether to mark it."""

    x: float
    y: float
    label: str
    href: str | None = None
    marked: bool = False


@dataclass(frozen=True)
class Dot:
    x: float
    y: float
    label: str
    href: str | None
    marked: bool


@dataclass(frozen=True)
class Label:
    """Text centred on ``x`` with its baseline at ``y``."""

    x: float
    y: float
    text: str


@dataclass(frozen=True)
class Tick:
    at: float
    text: str


@dataclass(frozen=True)
class Chart:
    title: str
    width: int
    height: int
    left: int
    top: int
    right: int
    bottom: int
    line: str  # polyline points
    dots: list[Dot]
    marked: list[Dot]
    x_ticks: list[Tick]
    y_ticks: list[Tick]
    x_label: str
    count: int
    labels: list[Label] = field(default_factory=list)  # one per marked point

    @property
    def empty(self) -> bool:
        return self.count == 0


def nice_ticks(low: float, high: float, count: int = 5, whole: bool = False) -> list[float]:
    """Round values (1, 2 or 5 times a power of ten apart) covering ``low``..``high``;
    ``whole`` keeps them whole numbers (versions, steps)."""
    if not (math.isfinite(low) and math.isfinite(high)):
        return []
    if high == low:
        return [low]
    raw = (high - low) / max(count - 1, 1)
    if whole:
        raw = max(raw, 1.0)
    power = 10 ** math.floor(math.log10(raw))
    step = next(m * power for m in (1, 2, 5, 10) if m * power >= raw)
    first = math.ceil(low / step) * step
    ticks = []
    value = first
    while value <= high + step * 1e-9:
        ticks.append(round(value, 12))
        value += step
    return ticks


def line_chart(data: Sequence[Datum], *, title: str, x_label: str, width: int = 640,
               height: int = 220) -> Chart:
    """A line through ``data`` in ``x`` order (whole numbers: versions or steps);
    non-finite values are left out."""
    points = sorted((d for d in data if math.isfinite(d.x) and math.isfinite(d.y)),
                    key=lambda d: d.x)
    left, right, top, bottom = 64, 16, 16, 36
    plot_w, plot_h = width - left - right, height - top - bottom
    if not points:
        return Chart(title, width, height, left, top, right, bottom, "", [], [], [], [],
                     x_label, 0)
    xs, ys = [p.x for p in points], [p.y for p in points]
    x_low, x_high = min(xs), max(xs)
    y_low, y_high = min(ys), max(ys)
    if y_low == y_high:
        pad = abs(y_low) * 0.05 or 1.0
        y_low, y_high = y_low - pad, y_high + pad

    def sx(x: float) -> float:
        return left + (plot_w / 2 if x_high == x_low else (x - x_low) / (x_high - x_low) * plot_w)

    def sy(y: float) -> float:
        return top + plot_h - (y - y_low) / (y_high - y_low) * plot_h

    dots = [Dot(round(sx(p.x), 1), round(sy(p.y), 1), p.label, p.href, p.marked)
            for p in points]
    line = " ".join(f"{d.x},{d.y}" for d in dots)
    x_ticks = [Tick(round(sx(v), 1), _label(v)) for v in nice_ticks(x_low, x_high, whole=True)
               if x_low <= v <= x_high]
    y_ticks = [Tick(round(sy(v), 1), _label(v)) for v in nice_ticks(y_low, y_high)
               if y_low <= v <= y_high]
    marked = [d for d in dots if d.marked]
    return Chart(title, width, height, left, top, right, bottom, line,
                 dots if len(dots) <= MAX_DOTS else [], marked, x_ticks, y_ticks, x_label,
                 len(dots), [_mark_label(d, left, width) for d in marked])


def _mark_label(dot: Dot, left: int, width: int) -> Label:
    """Above the ring, or below it when that would leave the picture (the highest value);
    shifted sideways to stay inside at the last version, and off the value axis's labels
    (left of ``left``) at the first."""
    above = dot.y - MARK_R - 4
    y = above if above - LABEL_ASCENT >= 0 else dot.y + MARK_R + 4 + LABEL_ASCENT
    half = LABEL_W / 2
    x = min(max(dot.x, left + half), width - half - 1)
    return Label(round(x, 1), round(y, 1), MARK_LABEL)


def _label(value: float) -> str:
    return f"{value:.4g}"


# -- the lineage graph ----------------------------------------------------------------------

NODE_W, NODE_H, GAP_X, GAP_Y, MARGIN = 190, 46, 56, 14, 12


@dataclass(frozen=True)
class Node:
    key: str
    kind: str  # version, run, experiment, dataset, commit, environment, parent, child
    title: str
    detail: str
    href: str | None
    column: int
    x: float = 0
    y: float = 0
    width: int = NODE_W
    height: int = NODE_H


@dataclass(frozen=True)
class Edge:
    source: str
    target: str
    path: str = ""


@dataclass(frozen=True)
class Graph:
    width: int
    height: int
    nodes: list[Node]
    edges: list[Edge] = field(default_factory=list)

    def node(self, key: str) -> Node:
        return next(n for n in self.nodes if n.key == key)


def lineage_graph(lineage: Lineage) -> Graph:
    """Inputs on the left (experiment, data, code, environment), then the run and the
    parent, the version, and the versions derived from it on the right. Without a run the
    inputs point at the version itself."""
    me = Node("version", "version", f"{lineage.name} v{lineage.version}",
              lineage.digest.removeprefix("blake3:")[:12],
              paths.version(lineage.name, lineage.version), 2)
    nodes: list[Node] = [me]
    edges: list[Edge] = []
    hub = "version"
    if lineage.run is not None:
        run_id = str(lineage.run.get("run_id", ""))
        nodes.append(Node("run", "run", str(lineage.run.get("name") or run_id[:12]),
                          f"run {run_id[:12]} · {lineage.run.get('status', '')}",
                          paths.run(run_id), 1))
        edges.append(Edge("run", "version"))
        hub = "run"
    if lineage.experiment:
        nodes.append(Node("experiment", "experiment", lineage.experiment, "experiment",
                          paths.experiment(lineage.experiment), 0))
        edges.append(Edge("experiment", hub))
    for number, data in enumerate(lineage.datasets):
        nodes.append(_dataset_node(number, data))
        edges.append(Edge(f"dataset-{number}", hub))
    git = lineage.git or {}
    if git.get("commit"):
        dirty = " (dirty)" if git.get("dirty") else ""
        nodes.append(Node("commit", "commit", str(git["commit"])[:12] + dirty,
                          str(git.get("branch") or git.get("origin") or "git commit"), None, 0))
        edges.append(Edge("commit", hub))
    env = lineage.environment or {}
    if env:
        nodes.append(Node("environment", "environment", f"Python {env.get('python', '?')}",
                          f"{env.get('platform', '')} · {env.get('package_count', 0)} packages",
                          None, 0))
        edges.append(Edge("environment", hub))
    if lineage.parent:
        parent = lineage.parent
        nodes.append(Node("parent", "parent", f"{parent['name']} v{parent['version']}",
                          "parent version", paths.version(parent["name"], parent["version"]), 1))
        edges.append(Edge("parent", "version"))
    for number, child in enumerate(lineage.descendants):
        nodes.append(Node(f"child-{number}", "child", f"{child['name']} v{child['version']}",
                          "derived version", paths.version(child["name"], child["version"]), 3))
        edges.append(Edge("version", f"child-{number}"))
    return _layout(nodes, edges)


def _dataset_node(number: int, data: dict[str, Any]) -> Node:
    digest = str(data.get("digest", "")).removeprefix("blake3:")[:12]
    if data.get("name") and data.get("version"):
        return Node(f"dataset-{number}", "dataset", f"{data['name']} v{data['version']}",
                    f"dataset {digest}", paths.dataset(str(data["name"])), 0)
    source = str(data.get("source") or "data")
    return Node(f"dataset-{number}", "dataset", source[-28:], f"data {digest}", None, 0)


def _layout(nodes: list[Node], edges: list[Edge]) -> Graph:
    columns = sorted({n.column for n in nodes})
    place = {c: i for i, c in enumerate(columns)}
    by_column = {c: [n for n in nodes if n.column == c] for c in columns}
    tallest = max(len(group) for group in by_column.values())
    height = MARGIN * 2 + tallest * NODE_H + (tallest - 1) * GAP_Y
    placed: dict[str, Node] = {}
    for column, group in by_column.items():
        used = len(group) * NODE_H + (len(group) - 1) * GAP_Y
        y = (height - used) / 2
        for node in group:
            x = MARGIN + place[column] * (NODE_W + GAP_X)
            placed[node.key] = Node(node.key, node.kind, node.title, node.detail, node.href,
                                    node.column, x, round(y, 1))
            y += NODE_H + GAP_Y
    width = MARGIN * 2 + len(columns) * NODE_W + (len(columns) - 1) * GAP_X
    drawn = [Edge(e.source, e.target, _curve(placed[e.source], placed[e.target]))
             for e in edges]
    return Graph(width, int(height), [placed[n.key] for n in nodes], drawn)


def _curve(a: Node, b: Node) -> str:
    x1, y1 = a.x + a.width, a.y + a.height / 2
    x2, y2 = b.x, b.y + b.height / 2
    bend = (x2 - x1) / 2
    return (f"M{x1:.1f},{y1:.1f} C{x1 + bend:.1f},{y1:.1f} "
            f"{x2 - bend:.1f},{y2:.1f} {x2:.1f},{y2:.1f}")
