"""Model flavors: log a live model in a run, register it, load it back, predict the same.

Flavor round trips need no second database, so they run on SQLite only.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import yaml
from tracking_support import train_classifier

import modelyard
from modelyard.errors import IntegrityError, InvalidInput
from modelyard.flavors import DESCRIPTOR, save_model
from modelyard.services.files import load_cache_path
from modelyard.services.registry import Registry
from modelyard.storage.content.objects import ObjectStore
from modelyard.storage.sql.database import Database


@pytest.fixture
def sqlite_reg(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Registry]:
    monkeypatch.setenv("MODELYARD_LOAD_CACHE", str(tmp_path / "load-cache"))
    registry = Registry(Database(f"sqlite:///{tmp_path / 'registry.db'}"),
                        ObjectStore(str(tmp_path / "objects")), user="alice")
    yield registry
    registry.close()


def _log_and_register(reg: Registry, model: Any, name: str, **kwargs: Any) -> Any:
    with modelyard.start_run(experiment="flavors", registry=reg) as run:
        run.log_model(model, "model", **kwargs)
        version = run.register_model(name)
    return reg.load(f"models:/{name}/{version.version}")


def test_sklearn_model_from_a_run_loads_and_predicts_identically(sqlite_reg: Registry) -> None:
    model, X, _ = train_classifier()
    with modelyard.start_run(experiment="fraud", name="lr", registry=sqlite_reg) as run:
        run.log_params({"C": 1.0, "max_iter": 200})
        run.log_metric("accuracy", float(model.score(X, _)))
        artifact = run.log_model(model, "model", input_example=X[:2])
        version = run.register_model("fraud")
    assert artifact.flavor == "sklearn" and artifact.kind == "dir"
    assert version.lineage["run_id"] == run.run_id and version.params["max_iter"] == 200
    sqlite_reg.set_policy("fraud", approvals=0)
    sqlite_reg.transition("fraud", version.version, "staging")
    sqlite_reg.transition("fraud", version.version, "production")
    loaded = sqlite_reg.load("models:/fraud/production")
    assert type(loaded) is type(model)
    np.testing.assert_array_equal(loaded.predict(X), model.predict(X))
    np.testing.assert_array_equal(loaded.predict_proba(X), model.predict_proba(X))
    described = sqlite_reg.lineage("fraud", 1).model
    assert described is not None and described["flavor"] == "sklearn"
    assert described["executes_code_on_load"] is True
    assert described["signature"]["inputs"] == {"type": "tensor", "dtype": "float64",
                                                "shape": [-1, 30]}
    assert described["signature"]["outputs"]["shape"] == [-1]
    assert described["input_example"] == X[:2].tolist()


def test_sklearn_with_skops_loads_only_the_recorded_types(sqlite_reg: Registry) -> None:
    model, X, _ = train_classifier()
    loaded = _log_and_register(sqlite_reg, model, "skops", serializer="skops")
    np.testing.assert_array_equal(loaded.predict(X), model.predict(X))


def test_onnx_model_loads_as_an_inference_session(sqlite_reg: Registry) -> None:
    from skl2onnx import to_onnx

    model, X, _ = train_classifier()
    proto = to_onnx(model, X[:1].astype(np.float32), target_opset=17)
    session = _log_and_register(sqlite_reg, proto, "onnx-fraud")
    assert type(session).__name__ == "InferenceSession"
    labels = session.run(None, {session.get_inputs()[0].name: X.astype(np.float32)})[0]
    assert (labels == model.predict(X)).mean() > 0.99  # float32 vs float64 arithmetic
    signature = sqlite_reg.lineage("onnx-fraud", 1).model["signature"]  # type: ignore[index]
    assert signature["inputs"][0]["shape"] == [-1, 30]
    assert signature["inputs"][0]["dtype"] == "float32"


def test_safetensors_round_trip_is_a_dict_of_equal_arrays(sqlite_reg: Registry) -> None:
    weights = {"w": np.arange(12, dtype=np.float32).reshape(3, 4), "b": np.ones(4)}
    loaded = _log_and_register(sqlite_reg, weights, "weights")
    assert set(loaded) == {"w", "b"}
    np.testing.assert_array_equal(loaded["w"], weights["w"])
    assert loaded["b"].dtype == np.float64
    signature = sqlite_reg.lineage("weights", 1).model["signature"]  # type: ignore[index]
    assert signature == {"tensors": {"b": {"dtype": "float64", "shape": [4]},
                                     "w": {"dtype": "float32", "shape": [3, 4]}}}


def test_torch_module_and_state_dict_load_as_logged(sqlite_reg: Registry) -> None:
    import torch

    torch.manual_seed(0)
    net = torch.nn.Sequential(torch.nn.Linear(4, 3), torch.nn.ReLU(), torch.nn.Linear(3, 1))
    x = torch.randn(5, 4)
    module = _log_and_register(sqlite_reg, net, "torch-module", input_example=x[:2])
    assert isinstance(module, torch.nn.Sequential)
    torch.testing.assert_close(module(x), net(x))
    state = _log_and_register(sqlite_reg, net.state_dict(), "torch-state")
    assert set(state) == set(net.state_dict())
    fresh = torch.nn.Sequential(torch.nn.Linear(4, 3), torch.nn.ReLU(), torch.nn.Linear(3, 1))
    fresh.load_state_dict(state)
    torch.testing.assert_close(fresh(x), net(x))
    signature = sqlite_reg.lineage("torch-module", 1).model["signature"]  # type: ignore[index]
    assert signature["inputs"]["shape"] == [-1, 4] and signature["outputs"]["shape"] == [-1, 1]


def test_plain_files_load_as_a_verified_local_path(sqlite_reg: Registry, tmp_path: Path) -> None:
    weights = tmp_path / "weights.bin"
    weights.write_bytes(b"\x00\x01weights")
    path = _log_and_register(sqlite_reg, weights, "files")
    assert isinstance(path, Path) and path.read_bytes() == weights.read_bytes()
    direct = sqlite_reg.register("direct", weights)  # no run, no descriptor
    assert sqlite_reg.load(direct.uri).read_bytes() == weights.read_bytes()


def test_a_tampered_local_copy_is_refused_before_unpickling(sqlite_reg: Registry) -> None:
    model, _, _ = train_classifier(max_iter=50)
    _log_and_register(sqlite_reg, model, "fraud")
    version = sqlite_reg.get_version("fraud", 1)
    cached = load_cache_path(version) / "model.joblib"
    cached.write_bytes(b"not the model")
    with pytest.raises(IntegrityError, match="does not match its digest"):
        sqlite_reg.load("models:/fraud/1")


def test_descriptor_records_flavor_and_undetectable_objects_are_refused(tmp_path: Path) -> None:
    descriptor = save_model({"w": np.zeros(2)}, tmp_path / "m", signature={"inputs": "given"})
    on_disk = yaml.safe_load((tmp_path / "m" / DESCRIPTOR).read_text())
    assert on_disk == descriptor and on_disk["flavor"] == "safetensors"
    assert on_disk["signature"] == {"inputs": "given"}
    assert on_disk["executes_code_on_load"] is False
    with pytest.raises(InvalidInput, match=r"cannot tell the flavor of a builtins\.object"):
        save_model(object(), tmp_path / "x")
    with pytest.raises(InvalidInput, match="unknown model flavor 'keras'"):
        save_model({"w": np.zeros(2)}, tmp_path / "y", flavor="keras")
    with pytest.raises(InvalidInput, match="unknown safetensors flavor options: compress"):
        save_model({"w": np.zeros(2)}, tmp_path / "z", compress=True)
    with pytest.raises(InvalidInput, match="not empty"):
        save_model({"w": np.zeros(2)}, tmp_path / "m")
