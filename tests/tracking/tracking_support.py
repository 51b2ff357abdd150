"""Helpers shared by the tracking tests: a real classifier and a real git repository."""

from __future__ import annotations

import subprocess
from pathlib import Path
from typing import Any


def train_classifier(max_iter: int = 200, c: float = 1.0) -> tuple[Any, Any, Any]:
    """A scikit-learn pipeline fitted on the bundled breast-cancer data: (model, X, y)."""
    from sklearn.datasets import load_breast_cancer
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    X, y = load_breast_cancer(return_X_y=True)
    model = make_pipeline(StandardScaler(), LogisticRegression(C=c, max_iter=max_iter))
    return model.fit(X, y), X, y


def git(cwd: Path, *args: str) -> str:
    done = subprocess.run(["git", *args], cwd=cwd, check=True, capture_output=True, text=True)
    return done.stdout.strip()


def git_repo(root: Path) -> Path:
    """A repository with one commit of ``train.py``."""
    root.mkdir(parents=True, exist_ok=True)
    git(root, "init", "-q")
    git(root, "config", "user.email", "t@example.com")
    git(root, "config", "user.name", "t")
    (root / "train.py").write_text("print('train')\n")
    git(root, "add", "train.py")
    git(root, "commit", "-q", "-m", "first")
    return root
