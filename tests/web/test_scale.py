"""Pages stay bounded as a model grows: the same statements for 3 versions or 60, a chart
that reads a sample of a long history, and a "production" label inside the picture."""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from sqlalchemy import event
from web_support import Browser, Seeded

from modelyard.services.charts import Charts
from modelyard.services.registry import Registry
from modelyard.web import svg
from server.conftest import Served

Open = Callable[[str | None], Browser]


@contextmanager
def statements(served: Served) -> Iterator[list[str]]:
    """Every SQL statement the app's engine runs inside the block."""
    seen: list[str] = []

    def count(_conn: Any, _cursor: Any, sql: str, *_args: Any) -> None:
        seen.append(sql)

    engine = served.backend.db.engine
    event.listen(engine, "before_cursor_execute", count)
    try:
        yield seen
    finally:
        event.remove(engine, "before_cursor_execute", count)


def _add_versions(served: Served, tmp_path: Path, count: int) -> None:
    reg = Registry(served.backend.db, served.backend.store, user="ana")
    weights = tmp_path / "more.bin"
    weights.write_bytes(b"more weights")
    for number in range(count):
        reg.register("fraud", weights, metrics={"auc": 0.5 + number / 1000},
                     aliases=[f"a{number}"] if number % 10 == 0 else ())


def test_model_page_and_chart_run_as_many_statements_for_60_versions_as_for_3(
        served: Served, site: Seeded, browser: Open, tmp_path: Path) -> None:
    user = browser(site.tokens["vi"])
    addresses = ("/models/fraud", "/models/fraud/chart.svg?metric=auc", "/models")

    def counts() -> list[int]:
        found = []
        for address in addresses:
            user.client.get(address)  # warm: first-use lookups are not the page's cost
            with statements(served) as seen:
                assert user.client.get(address).status_code == 200
            found.append(len(seen))
        return found

    few = counts()  # production (v2) and the latest (v3) are on the page: neither read again
    _add_versions(served, tmp_path, 60)  # more than a page of versions, aliases on some
    many = counts()
    with statements(served) as one_read:  # v2 is no longer on the first page
        Registry(served.backend.db, served.backend.store, user="vi").get_version("fraud", 2)
    expected = [few[0] + len(one_read), *few[1:]]
    assert many == expected, dict(zip(addresses, zip(expected, many, strict=True), strict=True))
    page = user.client.get("/models/fraud").text
    assert len(re.findall(r'<td><a href="/models/fraud/versions/\d+">v\d+</a></td>', page)) == 50
    assert 'rel="next"' in page


def test_the_model_page_lists_versions_newest_first_and_pages_each_one_once(
        served: Served, site: Seeded, browser: Open, tmp_path: Path) -> None:
    _add_versions(served, tmp_path, 120)  # versions 4..123
    reg = Registry(served.backend.db, served.backend.store, user="ana")
    gone = {*range(20, 90), 122}  # a gap wider than a page, and one at the top
    for number in gone:
        reg.delete_version("fraud", number)
    user = browser(site.tokens["vi"])
    shown, address, pages = [], "/models/fraud", 0
    while address:
        page = user.client.get(address).text
        shown += [int(n) for n in re.findall(r'<td><a href="/models/fraud/versions/(\d+)">', page)]
        _add_versions(served, tmp_path, 1)  # registered while paging: later than every page
        found = re.search(r'<a rel="next" href="([^"]+)"', page)
        address = found.group(1).replace("&amp;", "&") if found else ""
        pages += 1
    assert shown == sorted(set(range(1, 124)) - gone, reverse=True)
    assert pages == 2  # 52 live versions: 50, then 2
    assert user.client.get("/models/fraud", params={"page_token": "x"}).status_code == 400
    oldest_first = reg.list_versions("fraud", max_results=1).next_page_token
    assert user.client.get("/models/fraud", params={"page_token": oldest_first}
                           ).status_code == 400  # a token of the other direction
    again = user.client.get("/models/fraud").text
    assert re.findall(r'<td><a href="/models/fraud/versions/(\d+)">', again)[:1] == [
        str(max(shown) + pages)]  # the newest, registered while paging


def test_the_models_page_runs_as_many_statements_for_40_models_as_for_a_few(
        served: Served, site: Seeded, browser: Open, tmp_path: Path) -> None:
    user = browser(site.tokens["vi"])

    def count() -> int:
        user.client.get("/models")
        with statements(served) as seen:
            assert user.client.get("/models").status_code == 200
        return len(seen)

    few = count()
    reg = Registry(served.backend.db, served.backend.store, user="ana")
    weights = tmp_path / "w.bin"
    weights.write_bytes(b"weights")
    for number in range(40):  # each with an alias: one alias query per model was the cost
        reg.register(f"model-{number:02}", weights, aliases=["champion"])
    assert count() == few
    assert "model-39" in user.client.get("/models", params={"max_results": 100}).text


def test_a_long_history_is_charted_from_a_sample_that_says_so(
        served: Served, site: Seeded, browser: Open, tmp_path: Path, monkeypatch: Any) -> None:
    _add_versions(served, tmp_path, 22)  # versions 4..25; v2 is in production
    reg = Registry(served.backend.db, served.backend.store, user="ana")
    sample = Charts(reg.ctx).metric_sample("fraud", "auc", limit=10)
    assert sample.every == 3 and sample.versions == 25
    assert [p.version for p in sample.points] == [2, 3, 6, 9, 12, 15, 18, 21, 24, 25]
    assert [p.version for p in sample.points if p.production] == [2]
    assert sample.points[-1].value == 0.5 + 21 / 1000
    whole = Charts(reg.ctx).metric_sample("fraud", "auc", limit=25)
    assert whole.every == 1 and [p.version for p in whole.points] == list(range(1, 26))
    assert Charts(reg.ctx).metric_sample("fraud", "no-such-metric").points == []

    monkeypatch.setattr("modelyard.services.charts.CHART_POINTS", 10)
    chart = browser(site.tokens["vi"]).client.get("/models/fraud/chart.svg",
                                                   params={"metric": "auc"}).text
    assert "auc by version (1 in 3 of 25 versions)" in chart
    assert len(re.findall(r'<circle class="point"', chart)) == 10
    drawn = re.findall(r'<text class="mark-label" x="([\d.]+)" y="([\d.]+)"[^>]*>production<',
                       chart)
    assert len(drawn) == 1  # where the geometry (tested below) put it
    x, y = map(float, drawn[0])
    assert x >= svg.LABEL_W / 2 and y >= svg.LABEL_ASCENT


def _label_box(label: svg.Label) -> tuple[float, float, float, float]:
    return (label.x - svg.LABEL_W / 2, label.y - svg.LABEL_ASCENT,
            label.x + svg.LABEL_W / 2, label.y + svg.LABEL_DESCENT)


def test_the_production_label_stays_inside_the_plot_wherever_the_point_is() -> None:
    for marked in (1, 5, 9):  # the first, a middle and the last version
        for values in ((1.0, 2.0, 3.0), (3.0, 2.0, 1.0), (1.0, 3.0, 2.0)):
            data = [svg.Datum(n, values[(n - 1) % 3], f"v{n}", marked=n == marked)
                    for n in range(1, 10)]
            chart = svg.line_chart(data, title="t", x_label="version")
            (dot,), (label,) = chart.marked, chart.labels
            left, top, right, bottom = _label_box(label)
            assert left >= chart.left and right <= chart.width, (marked, values, label)
            assert top >= 0 and bottom <= chart.height, (marked, values, label)
            ring_top, ring_bottom = dot.y - svg.MARK_R, dot.y + svg.MARK_R
            assert bottom <= ring_top or top >= ring_bottom  # never over its own ring
