"""Modelyard in two minutes: train, register three versions, promote through reviewers, roll
back, read history, then serve the registry with its web UI to look around.

Runs on the embedded default (SQLite + local object store). Set MODELYARD_HOME to choose
where; by default the demo keeps its registry in ./.modelyard-demo so it never touches yours.
``--no-serve`` stops after the story; MODELYARD_DEMO_PORT picks the UI's port (8080).
"""

from __future__ import annotations

import os
import shutil
import socket
import sys
import tempfile
from pathlib import Path

import joblib
from rich.console import Console
from sklearn.datasets import load_breast_cancer
from sklearn.ensemble import GradientBoostingClassifier
from sklearn.metrics import roc_auc_score
from sklearn.model_selection import train_test_split

import modelyard
from modelyard.cli.output import versions_table

console = Console()


AUTHOR, REVIEWERS = "ana", ("bo", "cy")


def promote_with_approvals(reg: modelyard.Registry, name: str) -> None:
    """The governed road: a policy, a request with gate evidence, two reviewers' approvals."""
    reg.set_policy(name, approvals=2, reviewers=REVIEWERS, gates=[
        "metrics.auc >= 0.9", "metrics.auc >= production.metrics.auc - 0.01",
        "has(description)"], comment="two reviewers, no regression", actor="lead")
    for version in (1, 2):
        reg.transition(name, version, "staging", comment="passed offline eval", actor=AUTHOR)
        try:
            reg.transition(name, version, "production", actor=AUTHOR)
        except modelyard.ApprovalRequired as exc:
            console.print(f"[yellow]direct promotion refused[/]: {exc.message}\n  hint: {exc.hint}")
        request = reg.request_promotion(name, version, comment=f"ship v{version}", actor=AUTHOR)
        for gate in request.gates:
            console.print(f"  request #{request.id} gate {gate.describe()}")
        try:
            reg.approve(request.id, actor=AUTHOR)
        except modelyard.PermissionDenied as exc:
            console.print(f"  [yellow]refused[/]: {exc.message}")
        for reviewer in REVIEWERS:
            request = reg.approve(request.id, comment="metrics and evidence checked",
                                  actor=reviewer)
        console.print(f"request #{request.id}: {request.status} after approvals by "
                      f"{', '.join(request.approvals)}; production is version "
                      f"{reg.get_version(name, 'production').version}")


def main() -> None:
    home = os.environ.get("MODELYARD_HOME", str(Path(".modelyard-demo").absolute()))
    reg = modelyard.connect(home=home, user=os.environ.get("MODELYARD_USER", "demo"))
    name = f"breast-cancer-{os.getpid()}"
    x, y = load_breast_cancer(return_X_y=True)
    x_train, x_test, y_train, y_test = train_test_split(x, y, test_size=0.3, random_state=0)

    for depth, lr in ((1, 0.05), (3, 0.1), (2, 0.3)):
        clf = GradientBoostingClassifier(max_depth=depth, learning_rate=lr, n_estimators=50,
                                         random_state=0).fit(x_train, y_train)
        auc = roc_auc_score(y_test, clf.predict_proba(x_test)[:, 1])
        with tempfile.TemporaryDirectory() as tmp:
            joblib.dump(clf, Path(tmp) / "model.joblib")
            v = reg.register(name, tmp, params={"max_depth": depth, "learning_rate": lr},
                             metrics={"auc": round(auc, 4)}, tags={"dataset": "breast_cancer"},
                             description=f"gbm depth={depth} lr={lr}", actor=AUTHOR)
        console.print(f"registered {v.uri}  auc={v.metrics['auc']}  {v.digest[:23]}…")

    best = reg.search_versions(f"name = '{name}' and metrics.auc >= 0.98")
    console.print(f"versions with auc >= 0.98: {[v.version for v in best]}")
    promote_with_approvals(reg, name)
    reg.set_alias(name, "champion", 2)
    restored = reg.rollback(name, comment="v2 alerts in shadow traffic")
    console.print(f"rolled back: production is version {restored.version} again")

    with tempfile.TemporaryDirectory() as out:
        path = reg.download(f"models:/{name}/production", out)
        model = joblib.load(path / "model.joblib")
        console.print(f"downloaded and verified production; test accuracy "
                      f"{model.score(x_test, y_test):.3f}")

    console.print(versions_table(reg.list_versions(name), title=name))
    for event in reg.history(name).events:
        before, after = event.before or {}, event.after or {}
        change = (f"{before.get('stage')} → {after.get('stage')}" if "stage" in before
                  else ", ".join(sorted(after)))
        console.print(f"{event.seq:>4} {event.at:%H:%M:%S} {event.actor:<6} "
                      f"{event.action:<18} v{event.version or '-'} {change} {event.comment}")
    chain = reg.verify_audit()
    console.print(f"audit chain: {chain.checked} events, {'intact' if chain.ok else chain.reason}")
    cli = command_path()
    console.print(f"registry: {home}  (try: MODELYARD_HOME={home} {cli} history {name}, "
                  f"{cli} dossier {name} 2)")
    if "--no-serve" not in sys.argv[1:]:
        serve(reg, home)


ADMIN = "demo-admin"


def serve(reg: modelyard.Registry, home: str) -> None:
    """Serve the demo registry with its web UI, and print the URL and a token to sign in
    with (an admin's: the demo's first user, made once; a new token on each run)."""
    import uvicorn

    from modelyard.server.app import create_app
    from modelyard.services.access import init_admin

    if ADMIN in {u.name for u in reg.list_users()}:
        _, token = reg.create_token("demo", user=ADMIN)
    else:
        _, token = init_admin(reg.db, ADMIN)
    port = _free_port(int(os.environ.get("MODELYARD_DEMO_PORT", "8080")))
    url = f"http://127.0.0.1:{port}"
    console.print(f"\n[bold]web UI[/]: {url}  (sign in with this token)\n"
                  f"[bold]token[/]: {token}\n"
                  f"REST API: {url}/docs   stop: Ctrl-C", soft_wrap=True)
    settings = modelyard.Settings.resolve(home=home)
    uvicorn.run(create_app(settings.registry_uri, settings.store_uri), host="127.0.0.1",
                port=port, log_level="warning")


def _free_port(wanted: int) -> int:
    """``wanted`` if nothing listens there, else any free port."""
    with socket.socket() as probe:
        try:
            probe.bind(("127.0.0.1", wanted))
        except OSError:
            probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def command_path() -> str:
    """How to run the CLI from here: ``modelyard`` when the shell finds this very install,
    else its path (``.venv/bin/modelyard`` after the README's install), else ``python -m``."""
    beside = Path(sys.executable).with_name("modelyard")
    on_path = shutil.which("modelyard")
    if on_path and beside.exists() and os.path.samefile(on_path, beside):
        return "modelyard"
    if beside.exists():
        relative = os.path.relpath(beside)
        return relative if not relative.startswith("..") else str(beside)
    return f"{sys.executable} -m modelyard"


if __name__ == "__main__":
    main()
