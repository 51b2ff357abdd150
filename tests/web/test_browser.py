"""The web UI in a real headless Chromium (Debian's /usr/bin/chromium, driven by Playwright)
against a live server: a reviewer signs in, opens the model, and approves a request.

``MODELYARD_SCREENSHOTS=DIR`` also saves the README's screenshots of the main pages there.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from web_support import Seeded, seed

from modelyard.services.registry import Registry
from modelyard.storage.content.objects import ObjectStore
from modelyard.storage.sql.database import Database
from server.conftest import LiveServer

CHROMIUM = Path("/usr/bin/chromium")
if not CHROMIUM.exists() and not os.environ.get("CI"):
    pytest.skip("needs Debian's chromium (apt-get install chromium; .ci/run installs it)",
                allow_module_level=True)

from playwright.sync_api import Browser, Page, expect, sync_playwright  # noqa: E402


@pytest.fixture
def seeded_server(start_server: Callable[..., LiveServer], tmp_path: Path
                  ) -> tuple[LiveServer, Seeded]:
    server = start_server()
    db = Database(server.registry_uri)
    try:
        return server, seed(db, ObjectStore(server.store_uri), server.token, tmp_path)
    finally:
        db.dispose()


@pytest.fixture
def chromium() -> Iterator[Browser]:
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=str(CHROMIUM), headless=True)
        yield browser
        browser.close()


def _sign_in(page: Page, server: LiveServer, token: str) -> None:
    page.goto(f"{server.url}/")
    expect(page).to_have_url(f"{server.url}/login?next=%2Fmodels")  # signed out: sign in
    page.fill("#token", token)
    page.click("button[type=submit]")
    expect(page).to_have_url(f"{server.url}/models")


def test_a_reviewer_signs_in_opens_the_model_and_approves(
    seeded_server: tuple[LiveServer, Seeded], chromium: Browser
) -> None:
    server, site = seeded_server
    page = chromium.new_page(viewport={"width": 1280, "height": 900})
    _sign_in(page, server, site.tokens["bo"])
    expect(page.locator("body")).to_contain_text("fraud")
    page.click("text=fraud")
    expect(page.locator("h1")).to_contain_text("fraud")
    page.goto(f"{server.url}/requests/{site.pending}")
    page.fill("#approve-comment", "checked in the browser")
    page.click("button.approve")
    expect(page.locator("h1")).to_contain_text("applied")
    db = Database(server.registry_uri)
    try:
        reg = Registry(db, ObjectStore(server.store_uri), user="ana")
        assert reg.get_version("models:/fraud/production").version == 3
        decision = [e for e in reg.audit("fraud") if e.action == "request.approve"][-1]
        assert decision.actor == "bo"  # who the browser's session says, not a form field
    finally:
        db.dispose()
    shots = os.environ.get("MODELYARD_SCREENSHOTS")
    if shots:
        _screenshots(page, server, Path(shots))


def test_a_viewer_sees_no_approve_button(
    seeded_server: tuple[LiveServer, Seeded], chromium: Browser
) -> None:
    server, site = seeded_server
    page = chromium.new_page()
    _sign_in(page, server, site.tokens["vi"])
    page.goto(f"{server.url}/requests/{site.pending}")
    expect(page.locator("h1")).to_contain_text("pending")
    assert page.locator("button.approve").count() == 0


def _screenshots(page: Page, server: LiveServer, folder: Path) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    for name, path in (("models", "/models"), ("model", "/models/fraud"),
                       ("version", "/models/fraud/versions/3"), ("requests", "/requests"),
                       ("audit", "/audit")):
        page.goto(f"{server.url}{path}")
        page.screenshot(path=str(folder / f"{name}.png"), full_page=False)
