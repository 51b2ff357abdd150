"""Every page renders the registry's data, and actions go through the registry's rules."""

from __future__ import annotations

import re
from collections.abc import Callable

from fastapi.testclient import TestClient
from web_support import Browser, Seeded, audit_events

from modelyard.services.registry import Registry
from server.conftest import Served

Open = Callable[[str | None], Browser]


def _registry(served: Served) -> Registry:
    return Registry(served.backend.db, served.backend.store, user="ana")


def test_models_page_shows_latest_production_aliases_and_pending(
        site: Seeded, browser: Open) -> None:
    page = browser(site.tokens["vi"]).client.get("/models")
    assert page.status_code == 200
    row = re.search(r"<tr>\s*<td><a href=\"/models/fraud\">fraud</a>.*?</tr>", page.text, re.S)
    assert row is not None
    assert ">v3<" in row.group(0) and ">v2<" in row.group(0)
    assert "@champion → v2" in row.group(0)
    assert 'class="badge status-pending">1<' in row.group(0)
    assert page.headers["cache-control"] == "no-store"
    assert "frame-ancestors" in page.headers["content-security-policy"]


def test_models_search_uses_the_filter_language_and_shows_errors_with_their_column(
        site: Seeded, browser: Open) -> None:
    user = browser(site.tokens["vi"])
    found = user.client.get("/models", params={"q": "metrics.auc >= 0.85"})
    assert found.status_code == 200
    assert "fraud v2" in found.text and "fraud v3" in found.text and "fraud v1" not in found.text
    bad = user.client.get("/models", params={"q": "metrics.auc >= "})
    assert bad.status_code == 400
    assert "invalid expression at column 16" in bad.text
    assert 'aria-invalid="true"' in bad.text


def test_lists_page_with_keyset_tokens(served: Served, site: Seeded, browser: Open) -> None:
    reg = _registry(served)
    for number in range(55):
        reg.create_model(f"m{number:02d}")
    user = browser(site.tokens["vi"])
    first = user.client.get("/models")
    link = re.search(r'rel="next" href="([^"]+)"', first.text)
    assert link is not None and "m48" in first.text and "m49" not in first.text
    second = user.client.get(link.group(1).replace("&amp;", "&"))
    assert "m49" in second.text and "m48" not in second.text and "First page" in second.text


def test_model_page_versions_metrics_policy_and_pending(site: Seeded, browser: Open) -> None:
    page = browser(site.tokens["vi"]).client.get("/models/fraud")
    assert page.status_code == 200
    for shown in ('class="badge stage-production">production', "metrics.auc &gt;= 0.8",
                  "bo, cy", 'href="/requests/2"', "0.91", "0.88", "0.82",
                  'data="/models/fraud/chart.svg?metric=auc"'):
        assert shown in page.text
    assert "Roll back" not in page.text  # a viewer may not move stages


def test_metric_chart_has_one_point_per_version_and_marks_production(
        site: Seeded, browser: Open) -> None:
    chart = browser(site.tokens["vi"]).client.get("/models/fraud/chart.svg",
                                                   params={"metric": "auc"})
    assert chart.headers["content-type"].startswith("image/svg+xml")
    assert len(re.findall(r'<circle class="point"', chart.text)) == 3
    marked = re.findall(r'<a href="([^"]+)" target="_top"><circle class="marked"', chart.text)
    assert marked == ["/models/fraud/versions/2"]


def test_version_page_lineage_files_and_download(served: Served, site: Seeded,
                                                  browser: Open) -> None:
    user = browser(site.tokens["vi"])
    page = user.client.get("/models/fraud/versions/3")
    assert page.status_code == 200
    kinds = re.findall(r'data-kind="(\w+)"', page.text)
    assert {"version", "run", "experiment", "dataset", "commit", "environment",
            "parent"} <= set(kinds)
    assert f'href="/runs/{site.run_id}"' in page.text
    assert 'href="/datasets/customers"' in page.text
    assert "weights.bin" in page.text and "config.json" in page.text
    link = re.search(r'href="(/download/[^"]+weights\.bin)"', page.text)
    assert link is not None
    got = user.client.get(link.group(1).replace("&amp;", "&"))
    assert got.status_code == 200 and got.content == bytes([3]) * 256
    assert got.headers["content-disposition"] == 'attachment; filename="weights.bin"'
    parent = user.client.get("/models/fraud/versions/2")
    assert re.search(r'data-kind="child"', parent.text)  # v3 derives from v2


def test_download_needs_a_session(served: Served, site: Seeded) -> None:
    digest = _registry(served).get_version("fraud", 1).digest
    with TestClient(served.app) as anonymous:
        answer = anonymous.get(f"/download/{digest}", follow_redirects=False)
    assert answer.status_code == 303


def test_compare_page_shows_the_diff(site: Seeded, browser: Open) -> None:
    page = browser(site.tokens["vi"]).client.get("/models/fraud/versions/3/compare",
                                                  params={"other": "2"})
    assert page.status_code == 200
    assert "0.88 → 0.91" in page.text
    assert "~ <code>config.json</code>" in page.text


def test_history_page_timeline_policies_and_production_at_a_time(
        served: Served, site: Seeded, browser: Open) -> None:
    user = browser(site.tokens["vi"])
    page = user.client.get("/models/fraud/history")
    assert "request #1 approved by bo" in page.text
    assert "one reviewer, auc floor" in page.text
    when = _registry(served).get_version("fraud", 2).updated_at.isoformat()
    then = user.client.get("/models/fraud/history", params={"at": when})
    assert re.search(r"fraud v2</a> was in production", then.text)
    before = user.client.get("/models/fraud/history", params={"at": "2000-01-01"})
    assert "nothing was in production" in before.text
    on_model = user.client.get("/models/fraud", params={"at": when})  # the model page too
    assert re.search(r"At [^:]+:\d\d:\d\d UTC:\s*<a href=\"/models/fraud/versions/2\">"
                     r"fraud v2</a> was in production", on_model.text)
    assert "nothing was in production" in user.client.get(
        "/models/fraud", params={"at": "2000-01-01"}).text
    assert user.client.get("/models/fraud", params={"at": "soon"}).status_code == 400


def test_a_viewer_sees_no_approve_button_and_a_forged_approve_is_refused_and_audited(
        served: Served, site: Seeded, browser: Open) -> None:
    viewer = browser(site.tokens["vi"])
    page = viewer.client.get(f"/requests/{site.pending}")
    assert page.status_code == 200
    assert "metrics.auc = 0.91" in page.text  # the gate evidence
    assert "/approve" not in page.text and "/reject" not in page.text
    assert "does not review requests" in page.text
    forged = viewer.client.post(f"/requests/{site.pending}/approve",
                                data={"csrf": viewer.csrf(), "comment": "sure"})
    assert forged.status_code == 403
    assert "needs the review permission" in forged.text
    assert _registry(served).get_request(site.pending).status == "pending"
    denied = audit_events(served, "access.denied")[-1]
    assert denied.after == {"user": "vi", "operation": "approve",
                            "reason": "permission_denied"}


def test_who_may_not_decide_sees_why(site: Seeded, browser: Open) -> None:
    contributor = browser(site.tokens["carl"]).client.get(f"/requests/{site.pending}")
    assert "/approve" not in contributor.text
    assert "your role (contributor) does not review requests" in contributor.text
    unnamed = browser(site.tokens["ana"]).client.get(f"/requests/{site.pending}")
    assert "/approve" not in unnamed.text  # an admin, but not a reviewer the policy names
    assert "ana is not a reviewer of &#39;fraud&#39; (reviewers: bo, cy)" in unnamed.text


def test_a_reviewer_approves_from_the_queue_and_production_moves(
        served: Served, site: Seeded, browser: Open) -> None:
    bo = browser(site.tokens["bo"])
    queue = bo.client.get("/requests")
    mine = queue.text.split('id="others-h"')[0]
    assert f'href="/requests/{site.pending}"' in mine
    page = bo.client.get(f"/requests/{site.pending}")
    csrf = re.search(r'action="/requests/\d+/approve".*?name="csrf" value="(\w+)"', page.text,
                     re.S)
    assert csrf is not None
    done = bo.client.post(f"/requests/{site.pending}/approve",
                          data={"csrf": csrf.group(1), "comment": "ship it"})
    assert done.status_code == 200 and "the version is now in production" in done.text
    assert _registry(served).get_model("fraud").production_version == 3
    model = bo.client.get("/models/fraud")
    assert re.search(r'Production</h2>\s*<p class="big"><a href="/models/fraud/versions/3"',
                     model.text)
    assert "Nothing waits for you" in bo.client.get("/requests").text


def test_a_rejection_needs_a_comment(served: Served, site: Seeded, browser: Open) -> None:
    cy = browser(site.tokens["cy"])
    empty = cy.client.post(f"/requests/{site.pending}/reject",
                           data={"csrf": cy.csrf(), "comment": " "})
    assert empty.status_code == 400 and "needs a comment" in empty.text
    done = cy.client.post(f"/requests/{site.pending}/reject",
                          data={"csrf": cy.csrf(), "comment": "not yet"})
    assert done.status_code == 200
    assert _registry(served).get_request(site.pending).status == "rejected"


def test_rollback_with_confirmation_for_contributors_only(
        served: Served, site: Seeded, browser: Open) -> None:
    reg = _registry(served)
    reg.approve(site.pending, actor="bo")  # v3 in production, v2 archived
    viewer = browser(site.tokens["vi"])
    assert "Roll back" not in viewer.client.get("/models/fraud").text
    assert "does not allow moving stages" in viewer.client.get("/models/fraud/rollback").text
    carl = browser(site.tokens["carl"])
    assert 'href="/models/fraud/rollback"' in carl.client.get("/models/fraud").text
    confirm = carl.client.get("/models/fraud/rollback")
    assert "Yes, roll back" in confirm.text
    done = carl.client.post("/models/fraud/rollback",
                            data={"csrf": carl.csrf(), "comment": "v3 misbehaves"})
    assert done.status_code == 200 and "Rolled back." in done.text
    assert reg.get_model("fraud").production_version == 2
    event = audit_events(served, "version.rollback")[-1]
    assert event.actor == "carl" and event.comment == "v3 misbehaves"


def test_runs_experiments_and_a_run_with_charts(site: Seeded, browser: Open) -> None:
    user = browser(site.tokens["vi"])
    runs = user.client.get("/runs", params={"experiment": "fraud"})
    assert runs.text.count('href="/runs/') >= 3
    filtered = user.client.get("/runs", params={"filter": "metrics.auc > 0.9"})
    assert "gbm-3" in filtered.text and "gbm-1" not in filtered.text
    bad = user.client.get("/runs", params={"filter": "metrics.auc >"})
    assert bad.status_code == 400 and "invalid expression" in bad.text
    run = user.client.get(f"/runs/{site.run_id}")
    assert run.status_code == 200
    assert run.text.count('<circle class="point"') == 3  # auc at steps 0, 1, 2
    assert 'href="/models/fraud/versions/3"' in run.text
    assert 'href="/datasets/customers"' in run.text
    experiments = user.client.get("/experiments")
    assert re.search(r'fraud</a></td><td class="num">3<', experiments.text)


def test_datasets_and_the_versions_that_used_them(site: Seeded, browser: Open) -> None:
    user = browser(site.tokens["vi"])
    assert 'href="/datasets/customers"' in user.client.get("/datasets").text
    page = user.client.get("/datasets/customers")
    for number in (1, 2, 3):
        assert f'href="/models/fraud/versions/{number}"' in page.text
    assert user.client.get("/datasets/nope").status_code == 404


def test_audit_log_filters_and_chain_verification(site: Seeded, browser: Open) -> None:
    user = browser(site.tokens["vi"])
    page = user.client.get("/audit", params={"actor": "bo"})
    actions = re.findall(r"<td><code>([a-z._]+)</code></td>", page.text)
    assert actions and set(actions) <= {"request.approve", "version.transition",
                                        "request.applied"}
    requests = user.client.get("/audit", params={"action": "request", "model": "fraud"})
    assert set(re.findall(r"<td><code>([a-z._]+)</code></td>", requests.text)) == {
        "request.create", "request.approve", "request.applied"}
    assert user.client.get("/audit", params={"since": "not a time"}).status_code == 400
    assert user.client.get("/audit", params={"until": "not a time"}).status_code == 400
    verified = user.client.get("/audit/verify")
    assert "The chain of" in verified.text and "verifies" in verified.text


def test_the_audit_log_between_since_and_until(served: Served, site: Seeded,
                                                browser: Open) -> None:
    every = Registry(served.backend.db, served.backend.store, user="ana").audit()
    times = sorted({e.at for e in every})
    since, until = times[2], times[-2]
    inside = [e.seq for e in every if since <= e.at < until]
    page = browser(site.tokens["vi"]).client.get(
        "/audit", params={"since": since.isoformat(), "until": until.isoformat()})
    assert [int(n) for n in re.findall(r'<tr><td class="num">(\d+)</td>', page.text)] == inside
    assert 0 < len(inside) < len(every)
    assert f'name="until" value="{until.isoformat()}"' in page.text  # the form keeps it


def test_missing_things_are_pages_not_json(site: Seeded, browser: Open) -> None:
    user = browser(site.tokens["vi"])
    missing = user.client.get("/models/frud")
    assert missing.status_code == 404
    assert missing.headers["content-type"].startswith("text/html")
    assert "did you mean" in missing.text
    assert user.client.get("/requests/abc").status_code == 400
    assert user.client.get("/static/../views.py").status_code == 404
