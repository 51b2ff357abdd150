"""PyTorch: a whole ``nn.Module`` or a state dict, loaded back as it was logged.

A state dict loads with ``weights_only=True`` (no code runs). A whole module is a pickle
and loads with ``weights_only=False``, so it runs code: the registry verifies the digest
first, and its class must be importable where it is loaded.
"""

from __future__ import annotations

import sys
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from modelyard.errors import InvalidInput
from modelyard.flavors import refuse_options
from modelyard.flavors.signature import io_signature

FILES = {"module": "model.pt", "state_dict": "state_dict.pt"}


def _is_state_dict(obj: Any, torch: Any) -> bool:
    return (isinstance(obj, Mapping) and bool(obj)
            and all(isinstance(v, torch.Tensor) for v in obj.values()))


class TorchFlavor:
    name = "torch"
    executes_code = True  # for modules; state dicts load with weights_only=True

    def detect(self, obj: Any) -> bool:
        torch = sys.modules.get("torch")
        return torch is not None and (isinstance(obj, torch.nn.Module)
                                      or _is_state_dict(obj, torch))

    def save(self, obj: Any, dest: Path, **options: Any) -> dict[str, Any]:
        import torch

        refuse_options(self.name, options)
        form = "module" if isinstance(obj, torch.nn.Module) else "state_dict"
        if form == "state_dict" and not _is_state_dict(obj, torch):
            raise InvalidInput("the torch flavor saves an nn.Module or a dict of tensors")
        torch.save(obj, dest / FILES[form])
        return {"file": FILES[form], "format": form}

    def load(self, root: Path, options: dict[str, Any]) -> Any:
        import torch

        form = options.get("format")
        if form not in FILES:
            raise InvalidInput(f"unknown torch model format {form!r}")
        return torch.load(root / FILES[form], weights_only=form == "state_dict",
                          map_location="cpu")

    def signature(self, obj: Any, example: Any) -> dict[str, Any] | None:
        import torch

        if example is None or not isinstance(obj, torch.nn.Module):
            return None
        tensor = torch.as_tensor(example)
        was_training = obj.training
        obj.eval()
        try:
            with torch.no_grad():
                output = obj(tensor)
        finally:
            obj.train(was_training)
        return io_signature(tensor, output)


FLAVOR = TorchFlavor()
