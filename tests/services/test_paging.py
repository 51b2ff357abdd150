"""Keyset pages on every list operation: complete, in order, stable under concurrent inserts."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from modelyard.domain.paging import Page
from modelyard.errors import InvalidInput
from modelyard.services.registry import Registry


def _all_pages(fetch: Callable[..., Page[Any]], size: int, page_token: str | None = None,
               **kwargs: Any) -> list[list[Any]]:
    pages, token = [], page_token
    while True:
        page = fetch(max_results=size, page_token=token, **kwargs)
        assert len(page) <= size
        pages.append(list(page))
        token = page.next_page_token
        if token is None:
            return pages


def test_models_page_by_name_and_stay_stable_under_inserts(reg: Registry) -> None:
    for name in ("b", "d", "f", "h", "j", "l", "n"):
        reg.create_model(name)
    first = reg.list_models(max_results=3)
    assert [m.name for m in first] == ["b", "d", "f"] and first.next_page_token
    reg.create_model("a")  # before the cursor: not seen again, nothing repeats
    reg.create_model("g")  # after it: shows up on a later page
    rest = _all_pages(reg.list_models, 3, page_token=first.next_page_token)
    names = [m.name for page in rest for m in page]
    assert names == ["g", "h", "j", "l", "n"]
    assert [m.name for m in reg.list_models()] == sorted("abdfghjln")  # no size: everything
    assert reg.list_models().next_page_token is None


def test_filtered_version_search_returns_full_pages_in_order(
    reg: Registry, model_dir: Path
) -> None:
    for i in range(12):
        reg.register("m", model_dir, metrics={"auc": i / 12}, tags={"even": str(i % 2 == 0)})
    matching = [v.version for v in reg.search_versions("metrics.auc >= 0.25 and tags.even = "
                                                       "'True'")]
    pages = _all_pages(reg.search_versions, 2, filter="metrics.auc >= 0.25 and "
                                                   "tags.even = 'True'")
    assert [v.version for page in pages for v in page] == matching == [5, 7, 9, 11]
    assert all(len(p) == 2 for p in pages)  # a selective filter still fills each page
    listed = _all_pages(reg.list_versions, 5, name="m")
    assert [len(p) for p in listed] == [5, 5, 2]


def test_versions_page_newest_first_across_gaps_and_concurrent_inserts(
    reg: Registry, model_dir: Path
) -> None:
    for i in range(9):
        reg.register("m", model_dir, metrics={"auc": i / 10})
    reg.register("a", model_dir)
    for number in (4, 5, 6):
        reg.delete_version("m", number)
    first = reg.list_versions("m", descending=True, max_results=2)
    assert [v.version for v in first] == [9, 8] and first.next_page_token
    reg.register("m", model_dir)  # v10, above the cursor: not on a later page
    rest = _all_pages(reg.list_versions, 2, page_token=first.next_page_token, name="m",
                      descending=True)
    assert [v.version for page in rest for v in page] == [7, 3, 2, 1]
    assert [v.version for v in reg.list_versions("m", descending=True)] == [10, 9, 8, 7, 3, 2, 1]
    # Every model, in reverse (name, version) order; a filter SQL cannot settle alone
    # (arithmetic is evaluated in Python) still fills the pages.
    every = _all_pages(reg.search_versions, 3, descending=True)
    assert [(v.name, v.version) for page in every for v in page] == [
        *(("m", n) for n in (10, 9, 8, 7, 3, 2, 1)), ("a", 1)]
    picky = _all_pages(reg.search_versions, 2, filter="metrics.auc * 10 >= 2", descending=True)
    assert [v.version for page in picky for v in page] == [9, 8, 7, 3]
    with pytest.raises(InvalidInput, match="invalid page token"):  # one direction per token
        reg.list_versions("m", max_results=2, page_token=first.next_page_token)


def test_runs_audit_requests_datasets_and_experiments_page(
    reg: Registry, model_dir: Path, tmp_path: Path
) -> None:
    runs = [reg.create_run(f"e{i % 2}", name=f"r{i}").run_id for i in range(5)]
    newest_first = [r.run_id for r in reg.list_runs()]
    assert sorted(newest_first) == sorted(runs)
    assert [r.run_id for p in _all_pages(reg.list_runs, 2) for r in p] == newest_first
    assert [e.name for p in _all_pages(reg.list_experiments, 1) for e in p] == ["e0", "e1"]
    events = [e.seq for e in reg.audit()]
    assert [e.seq for p in _all_pages(reg.audit, 3) for e in p] == events
    for i in range(3):
        reg.register("m", model_dir)
        reg.transition("m", i + 1, "staging")
        reg.request_promotion("m", i + 1)
    assert [r.id for p in _all_pages(reg.list_requests, 2, name="m") for r in p] == [
        r.id for r in reg.list_requests("m")]
    data = tmp_path / "d.csv"
    for i in range(3):
        data.write_text(f"row {i}\n")
        reg.register_dataset("ds", data)
    assert [d.version for p in _all_pages(reg.list_datasets, 2) for d in p] == [1, 2, 3]


def test_bad_sizes_and_tokens_are_refused(reg: Registry) -> None:
    for name in ("a", "b", "c"):
        reg.create_model(name)
    token = reg.list_models(max_results=1).next_page_token
    for size in (0, -1, 10_001, True):
        with pytest.raises(InvalidInput, match="max_results"):
            reg.list_models(max_results=size)
    for bad in ("nonsense", "e30", token and token[:-2] + "xx"):
        with pytest.raises(InvalidInput, match="page token"):
            reg.list_models(page_token=bad)
    with pytest.raises(InvalidInput, match="page token"):
        reg.search_versions(page_token=token)  # a models token does not continue versions
