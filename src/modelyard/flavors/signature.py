"""Schemas and input examples as plain JSON, whatever array type the user trained with.

A schema is ``{"type": "tensor", "dtype", "shape"}`` (the first dimension is ``-1``: the
batch) or ``{"type": "columns", "columns": [{"name", "dtype"}]}`` for a data frame. These
helpers never import a framework: they read ``dtype``/``shape``/``columns`` attributes.
"""

from __future__ import annotations

from typing import Any


def schema_of(value: Any) -> dict[str, Any] | None:
    """The schema of an array, tensor, data frame or nested list; None if unknown."""
    if value is None:
        return None
    columns = getattr(value, "columns", None)
    dtypes = getattr(value, "dtypes", None)
    if columns is not None and dtypes is not None:
        return {"type": "columns",
                "columns": [{"name": str(c), "dtype": str(t)} for c, t in zip(columns, dtypes,
                                                                              strict=True)]}
    shape = getattr(value, "shape", None)
    dtype = getattr(value, "dtype", None)
    if shape is None or dtype is None:
        if not isinstance(value, list | tuple):
            return None
        import numpy

        return schema_of(numpy.asarray(value))
    dims = [int(d) for d in shape]
    return {"type": "tensor", "dtype": str(dtype).removeprefix("torch."),
            "shape": [-1, *dims[1:]] if dims else []}


def io_signature(example: Any, output: Any) -> dict[str, Any] | None:
    inputs = schema_of(example)
    if inputs is None:
        return None
    return {"inputs": inputs, "outputs": schema_of(output)}


def example_to_json(example: Any) -> Any:
    """A JSON/YAML-safe copy of an input example (data frames keep their column names)."""
    if example is None:
        return None
    if hasattr(example, "to_dict") and hasattr(example, "columns"):
        return {"columns": [str(c) for c in example.columns],
                "data": example.to_numpy().tolist()}
    if hasattr(example, "detach"):
        example = example.detach().cpu().numpy()
    if hasattr(example, "tolist"):
        return example.tolist()
    if isinstance(example, list | tuple | dict | str | int | float | bool):
        return example
    return repr(example)
