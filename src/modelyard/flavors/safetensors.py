"""A dict of numpy arrays in the safetensors format: plain data, no code runs on load.

Prefer this (or ONNX) over pickle-based flavors for weights that travel between teams.
The signature lists each tensor's dtype and shape.
"""

from __future__ import annotations

import sys
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from modelyard.errors import InvalidInput
from modelyard.flavors import refuse_options

FILE = "model.safetensors"


class SafetensorsFlavor:
    name = "safetensors"
    executes_code = False

    def detect(self, obj: Any) -> bool:
        numpy = sys.modules.get("numpy")
        return (numpy is not None and isinstance(obj, Mapping) and bool(obj)
                and all(isinstance(k, str) and isinstance(v, numpy.ndarray)
                        for k, v in obj.items()))

    def save(self, obj: Any, dest: Path, **options: Any) -> dict[str, Any]:
        from safetensors.numpy import save_file

        refuse_options(self.name, options)
        if not self.detect(obj):
            raise InvalidInput("the safetensors flavor saves a dict of numpy arrays")
        save_file(dict(obj), str(dest / FILE))
        return {"file": FILE}

    def load(self, root: Path, options: dict[str, Any]) -> Any:
        from safetensors.numpy import load_file

        return load_file(str(root / str(options["file"])))

    def signature(self, obj: Any, example: Any) -> dict[str, Any] | None:
        return {"tensors": {k: {"dtype": str(v.dtype), "shape": list(v.shape)}
                            for k, v in sorted(obj.items())}}


FLAVOR = SafetensorsFlavor()
