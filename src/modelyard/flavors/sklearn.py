"""scikit-learn estimators and pipelines, saved with joblib (default) or skops.

Both are pickle-like: loading runs code. joblib unpickles anything; skops only rebuilds
the types listed in the descriptor, so prefer ``serializer="skops"`` (or the ONNX flavor)
for models that cross trust boundaries. Either way the registry verifies the digest first.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

from modelyard.errors import InvalidInput
from modelyard.flavors import refuse_options
from modelyard.flavors.signature import io_signature

SERIALIZERS = {"joblib": "model.joblib", "skops": "model.skops"}


class SklearnFlavor:
    name = "sklearn"
    executes_code = True

    def detect(self, obj: Any) -> bool:
        base = sys.modules.get("sklearn.base")
        return base is not None and isinstance(obj, base.BaseEstimator)

    def save(self, obj: Any, dest: Path, **options: Any) -> dict[str, Any]:
        serializer = options.pop("serializer", "joblib")
        refuse_options(self.name, options)
        if serializer not in SERIALIZERS:
            raise InvalidInput(f"unknown sklearn serializer {serializer!r}: use joblib or skops")
        target = dest / SERIALIZERS[serializer]
        if serializer == "skops":
            import skops.io

            skops.io.dump(obj, target)
            trusted = skops.io.get_untrusted_types(file=target)
            return {"file": target.name, "serializer": "skops", "trusted_types": trusted}
        import joblib

        joblib.dump(obj, target)
        return {"file": target.name, "serializer": "joblib"}

    def load(self, root: Path, options: dict[str, Any]) -> Any:
        target = root / str(options["file"])
        if options.get("serializer") == "skops":
            import skops.io

            return skops.io.load(target, trusted=list(options.get("trusted_types") or []))
        import joblib

        return joblib.load(target)

    def signature(self, obj: Any, example: Any) -> dict[str, Any] | None:
        if example is None:
            return None
        output = obj.predict(example) if hasattr(obj, "predict") else None
        return io_signature(example, output)


FLAVOR = SklearnFlavor()
