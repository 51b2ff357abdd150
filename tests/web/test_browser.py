"""Real headless Chromium (Debian's /usr/bin/chromium, driven by Playwright) against a live
server on loopback: what a reviewer and a viewer do, and that pages load cleanly."""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from web_support import Seeded, seed

from modelyard.services.registry import Registry
from modelyard.storage.content.objects import ObjectStore
from modelyard.storage.sql.database import Database
from server.conftest import LiveServer

CHROMIUM = Path("/usr/bin/chromium")
# Pages saved as small PNGs (one viewport each) when MODELYARD_SCREENSHOTS names a folder.
SCREENSHOTS = {"/models": "models", "/models/fraud": "model",
               "/models/fraud/versions/3": "version", "/requests": "requests",
               "/audit": "audit"}
pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def chromium() -> Iterator[Any]:
    if not CHROMIUM.exists():
        if os.environ.get("CI"):
            pytest.fail(f"{CHROMIUM} is required in CI (.ci/run installs it)")
        pytest.skip(f"{CHROMIUM} is not installed (apt-get install chromium chromium-driver)")
    from playwright.sync_api import sync_playwright
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=str(CHROMIUM))
        yield browser
        browser.close()


@dataclass
class Site:
    server: LiveServer
    seeded: Seeded
    open_page: Callable[[], Any]
    problems: list[str] = field(default_factory=list)

    def note(self, bad: bool, what: str) -> None:
        if bad:
            self.problems.append(what)

    def registry(self) -> Registry:
        return Registry(Database(self.server.registry_uri),
                        ObjectStore(self.server.store_uri, registry=True), user="ana")

    def signed_in(self, user: str) -> Any:
        page = self.open_page()
        page.goto(self.server.url + "/requests")
        assert page.url.startswith(self.server.url + "/login")
        page.fill("#token", self.seeded.tokens[user])
        page.click("form[action='/login'] button[type=submit]")
        page.wait_for_url(self.server.url + "/requests")
        return page


@pytest.fixture
def site(start_server: Callable[..., LiveServer], chromium: Any, tmp_path: Path
         ) -> Iterator[Site]:
    """A live server over the seeded registry; every page opened records console errors,
    failed requests and error responses in ``problems``."""
    server = start_server()
    db = Database(server.registry_uri)
    try:
        seeded = seed(db, ObjectStore(server.store_uri, registry=True), server.token, tmp_path)
    finally:
        db.dispose()
    contexts: list[Any] = []
    found = Site(server, seeded, lambda: None)

    def open_page() -> Any:
        context = chromium.new_context(viewport={"width": 1280, "height": 900})
        contexts.append(context)
        page = context.new_page()
        page.on("console", lambda m: found.note(m.type == "error", m.text))
        page.on("pageerror", lambda e: found.note(True, str(e)))
        page.on("requestfailed", lambda r: found.note(not _aborted(r.failure),
                                                      f"{r.failure}: {r.url}"))
        page.on("response", lambda r: found.note(r.status >= 400, f"{r.status}: {r.url}"))
        return page

    found.open_page = open_page
    yield found
    for context in contexts:
        context.close()


def _aborted(failure: str | None) -> bool:
    """A fetch cut off because the page moved on (a favicon, say): not a failed request."""
    return failure == "net::ERR_ABORTED"


def test_a_reviewer_approves_in_the_browser_and_the_model_shows_the_new_production(
        site: Site) -> None:
    page = site.signed_in("bo")
    queue = page.locator("section", has=page.locator("#queue-h"))
    queue.locator(f'a[href="/requests/{site.seeded.pending}"]').click()
    page.fill("#approve-comment", "ship it")
    page.click("button.approve")
    page.wait_for_selector("text=the version is now in production")
    page.click("a[href='/models/fraud/versions/3']")
    page.click("nav.crumbs a[href='/models/fraud']")
    production = page.locator("section.card", has=page.locator("#prod-h"))
    assert production.locator("p.big").inner_text() == "fraud v3"
    assert site.registry().get_model("fraud").production_version == 3
    assert site.problems == []


def test_a_viewer_sees_no_approve_button_and_a_forged_post_is_refused_and_audited(
        site: Site) -> None:
    page = site.signed_in("vi")
    assert page.locator(".role.readonly").is_visible()
    page.goto(f"{site.server.url}/requests/{site.seeded.pending}")
    assert page.locator("button.approve").count() == 0
    assert page.locator("text=does not review requests").count() == 1
    csrf = page.locator("input[name=csrf]").first.get_attribute("value")
    answer = page.request.post(f"{site.server.url}/requests/{site.seeded.pending}/approve",
                               form={"csrf": csrf, "comment": "forged"})
    assert answer.status == 403
    reg = site.registry()
    assert reg.get_request(site.seeded.pending).status == "pending"
    denied = [e for e in reg.audit() if e.action == "access.denied"][-1]
    assert denied.after == {"user": "vi", "operation": "approve",
                            "reason": "permission_denied"}
    assert site.problems == []


def test_the_lineage_graph_and_the_metric_chart_render(site: Site) -> None:
    page = site.signed_in("vi")
    page.goto(site.server.url + "/models/fraud")
    page.wait_for_function("document.querySelector('object.chart').contentDocument"
                           " && document.querySelector('object.chart').contentDocument"
                           ".querySelectorAll('circle.point').length > 0")
    points = page.evaluate("document.querySelector('object.chart').contentDocument"
                           ".querySelectorAll('circle.point').length")
    assert points == site.registry().get_model("fraud").version_count == 3
    page.goto(site.server.url + "/models/fraud/versions/3")
    for kind in ("run", "dataset", "commit", "experiment", "parent"):
        assert page.locator(f"svg.lineage g[data-kind={kind}]").count() == 1, kind
    page.locator("svg.lineage g[data-kind=run]").click()
    page.wait_for_url(f"{site.server.url}/runs/**")
    assert page.locator("svg.chart-svg circle.point").count() == 3
    assert site.problems == []


def test_every_page_loads_without_console_errors_or_failed_requests(site: Site) -> None:
    page = site.signed_in("bo")
    paths = ["/models", "/models?q=metrics.auc+%3E%3D+0.85", "/models/fraud",
             "/models/fraud/history", "/models/fraud/rollback", "/models/fraud/versions/3",
             "/models/fraud/versions/3/compare?other=2", "/requests",
             f"/requests/{site.seeded.pending}", "/requests?status=applied", "/runs",
             f"/runs/{site.seeded.run_id}", "/experiments", "/datasets",
             "/datasets/customers", "/audit", "/audit/verify"]
    shots = Path(os.environ.get("MODELYARD_SCREENSHOTS", "")) if os.environ.get(
        "MODELYARD_SCREENSHOTS") else None
    for path in paths:
        answer = page.goto(site.server.url + path, wait_until="networkidle")
        assert answer is not None and answer.status == 200, path
        if shots is not None and path in SCREENSHOTS:  # the README's pictures, on request
            shots.mkdir(parents=True, exist_ok=True)
            page.screenshot(path=str(shots / f"{SCREENSHOTS[path]}.png"))
    page.set_viewport_size({"width": 390, "height": 844})  # a phone: nothing overflows
    page.goto(site.server.url + "/models/fraud")
    assert page.evaluate("document.documentElement.scrollWidth") <= 390
    assert site.problems == []
