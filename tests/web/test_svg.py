"""The geometry of the server-drawn charts and lineage graph, as data."""

from __future__ import annotations

from datetime import UTC, datetime

from modelyard.domain.lineage import Lineage
from modelyard.web import svg


def test_ticks_are_round_and_whole_where_asked() -> None:
    assert svg.nice_ticks(0.82, 0.91) == [0.85, 0.9]
    assert svg.nice_ticks(1, 3, whole=True) == [1, 2, 3]
    assert svg.nice_ticks(5, 5) == [5]


def test_a_chart_has_one_dot_per_finite_value_inside_its_plot() -> None:
    data = [svg.Datum(v, v * v, f"v{v}", marked=v == 3) for v in (4, 1, 3, 2)]
    chart = svg.line_chart([*data, svg.Datum(5, float("nan"), "nan")], title="t", x_label="x")
    assert [d.label for d in chart.dots] == ["v1", "v2", "v3", "v4"]  # in x order
    assert [d.label for d in chart.marked] == ["v3"]
    for dot in chart.dots:
        assert chart.left <= dot.x <= chart.width - chart.right
        assert chart.top <= dot.y <= chart.height - chart.bottom
    assert chart.dots[0].y > chart.dots[-1].y  # larger values are higher up
    assert svg.line_chart([], title="t", x_label="x").empty


def test_a_long_series_draws_its_line_and_the_marked_point_only() -> None:
    data = [svg.Datum(n, n % 7, f"v{n}", marked=n == 42) for n in range(svg.MAX_DOTS + 1)]
    chart = svg.line_chart(data, title="t", x_label="x")
    assert chart.dots == [] and len(chart.line.split()) == svg.MAX_DOTS + 1
    assert [d.label for d in chart.marked] == ["v42"]


def test_lineage_graph_links_inputs_through_the_run_to_the_version_and_its_children() -> None:
    lineage = Lineage(
        name="fraud", version=3, digest="blake3:" + "a" * 64, created_by="ana",
        created_at=datetime(2026, 1, 1, tzinfo=UTC),
        run={"run_id": "b" * 32, "name": "gbm", "status": "finished"}, experiment="exp",
        params={}, metrics={},
        datasets=[{"name": "customers", "version": 1, "digest": "blake3:" + "c" * 64},
                  {"source": "data/extra.csv", "digest": "blake3:" + "d" * 64}],
        git={"commit": "e" * 40, "branch": "main"}, environment={"python": "3.11"},
        parent={"name": "fraud", "version": 2, "digest": "x"},
        descendants=[{"name": "fraud-small", "version": 1, "digest": "y"}], model=None)
    graph = svg.lineage_graph(lineage)
    assert {(e.source, e.target) for e in graph.edges} == {
        ("run", "version"), ("experiment", "run"), ("dataset-0", "run"), ("dataset-1", "run"),
        ("commit", "run"), ("environment", "run"), ("parent", "version"),
        ("version", "child-0")}
    assert graph.node("run").href == "/runs/" + "b" * 32
    assert graph.node("dataset-0").href == "/datasets/customers"
    assert graph.node("dataset-1").href is None  # unregistered data has no page
    assert graph.node("child-0").href == "/models/fraud-small/versions/1"
    xs = [graph.node(k).x for k in ("experiment", "run", "version", "child-0")]
    assert xs == sorted(xs) and len(set(xs)) == 4  # left to right
    for node in graph.nodes:
        assert node.x >= 0 and node.x + node.width <= graph.width
        assert node.y >= 0 and node.y + node.height <= graph.height
