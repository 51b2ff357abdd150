"""ONNX models, loaded as an onnxruntime ``InferenceSession`` (no code runs on load).

The signature comes from the graph itself: every input and output with its element type
and shape (symbolic dimensions become ``-1``), so no example is needed.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

from modelyard.flavors import refuse_options

FILE = "model.onnx"


def _schema(value_info: Any) -> dict[str, Any]:
    from onnx import helper

    tensor = value_info.type.tensor_type
    dims = [d.dim_value if d.HasField("dim_value") else -1 for d in tensor.shape.dim]
    dtype = str(helper.tensor_dtype_to_np_dtype(tensor.elem_type)) if tensor.elem_type else None
    return {"name": value_info.name, "type": "tensor", "dtype": dtype, "shape": dims}


class OnnxFlavor:
    name = "onnx"
    executes_code = False

    def detect(self, obj: Any) -> bool:
        onnx = sys.modules.get("onnx")
        return onnx is not None and isinstance(obj, onnx.ModelProto)

    def save(self, obj: Any, dest: Path, **options: Any) -> dict[str, Any]:
        import onnx

        refuse_options(self.name, options)
        onnx.save_model(obj, str(dest / FILE))
        return {"file": FILE}

    def load(self, root: Path, options: dict[str, Any]) -> Any:
        import onnxruntime

        return onnxruntime.InferenceSession(str(root / str(options["file"])),
                                            providers=["CPUExecutionProvider"])

    def signature(self, obj: Any, example: Any) -> dict[str, Any] | None:
        graph = obj.graph
        return {"inputs": [_schema(i) for i in graph.input],
                "outputs": [_schema(o) for o in graph.output]}


FLAVOR = OnnxFlavor()
