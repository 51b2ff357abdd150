"""Model flavors: how a live object becomes files, and files become a live object again.

Each flavor is one small module behind the ``Flavor`` interface (``sklearn``, ``torch``,
``onnx``, ``safetensors``, ``files``). A saved model is a folder holding the flavor's files
and a descriptor, ``modelyard.yaml``, recording the flavor, its options, the signature
and an input example; loading reads that descriptor and asks the same flavor back.

Frameworks are optional extras: a flavor module imports its framework only when it saves
or loads, and detection only looks at frameworks the caller has already imported (an
object of a framework that is not imported cannot exist).
"""

from __future__ import annotations

import importlib
import os
from pathlib import Path
from typing import Any, Protocol

from modelyard.errors import InvalidInput

DESCRIPTOR = "modelyard.yaml"
FORMAT = 1
# Detection order matters: an ONNX proto or a torch state dict is also "some object".
FLAVORS = ("onnx", "torch", "sklearn", "safetensors", "files")


class Flavor(Protocol):
    name: str
    executes_code: bool
    """True when loading unpickles (runs code): the caller must verify the digest first."""

    def detect(self, obj: Any) -> bool: ...

    def save(self, obj: Any, dest: Path, **options: Any) -> dict[str, Any]:
        """Write ``obj``'s files under ``dest``; return the options ``load`` needs."""
        ...

    def load(self, root: Path, options: dict[str, Any]) -> Any: ...

    def signature(self, obj: Any, example: Any) -> dict[str, Any] | None:
        """Input/output schema, inferred from the object and the example when possible."""
        ...


def refuse_options(flavor: str, options: dict[str, Any]) -> None:
    """Flavors take few options; a misspelt one is an error, not silently ignored."""
    if options:
        raise InvalidInput(f"unknown {flavor} flavor options: {', '.join(sorted(options))}")


def get_flavor(name: str) -> Flavor:
    if name not in FLAVORS:
        raise InvalidInput(f"unknown model flavor {name!r}: expected one of {', '.join(FLAVORS)}")
    module = importlib.import_module(f"modelyard.flavors.{name}")
    flavor: Flavor = module.FLAVOR
    return flavor


def detect_flavor(obj: Any) -> Flavor:
    for name in FLAVORS:
        flavor = get_flavor(name)
        if flavor.detect(obj):
            return flavor
    raise InvalidInput(
        f"cannot tell the flavor of a {type(obj).__module__}.{type(obj).__qualname__}",
        hint=f"pass flavor= (one of {', '.join(FLAVORS)}) or log a file path",
    )


def save_model(
    obj: Any,
    dest: str | os.PathLike[str],
    *,
    flavor: str | None = None,
    signature: dict[str, Any] | None = None,
    input_example: Any = None,
    **options: Any,
) -> dict[str, Any]:
    """Write ``obj`` and its descriptor into the (new or empty) folder ``dest``."""
    from modelyard.flavors.signature import example_to_json

    chosen = get_flavor(flavor) if flavor else detect_flavor(obj)
    root = Path(dest)
    if root.exists() and any(root.iterdir()):
        raise InvalidInput(f"model folder {str(root)!r} is not empty")
    root.mkdir(parents=True, exist_ok=True)
    loader = chosen.save(obj, root, **options)
    descriptor = {
        "format": FORMAT,
        "flavor": chosen.name,
        "executes_code_on_load": chosen.executes_code,
        "options": loader,
        "signature": signature if signature is not None else chosen.signature(obj, input_example),
        "input_example": example_to_json(input_example),
    }
    import yaml  # imported on first use: a registry read never parses YAML

    (root / DESCRIPTOR).write_text(yaml.safe_dump(descriptor, sort_keys=False))
    return descriptor


def read_descriptor(data: bytes | str) -> dict[str, Any]:
    import yaml

    doc = yaml.safe_load(data)
    if not isinstance(doc, dict) or doc.get("format") != FORMAT or "flavor" not in doc:
        raise InvalidInput(f"{DESCRIPTOR} is not a Modelyard model descriptor (format {FORMAT})")
    return doc


def load_model(path: str | os.PathLike[str]) -> Any:
    """A live object for a folder with a descriptor; any other path is returned as is.

    Callers hand in content they have verified against its digest: some flavors unpickle.
    """
    root = Path(path)
    descriptor_file = root / DESCRIPTOR
    if not descriptor_file.is_file():
        return root
    descriptor = read_descriptor(descriptor_file.read_bytes())
    return get_flavor(str(descriptor["flavor"])).load(root, dict(descriptor.get("options") or {}))
