"""Plain files: a file or folder kept as is; loading returns its verified local path."""

from __future__ import annotations

import os
import shutil
from pathlib import Path
from typing import Any

from modelyard.errors import InvalidInput
from modelyard.flavors import refuse_options


class FilesFlavor:
    name = "files"
    executes_code = False

    def detect(self, obj: Any) -> bool:
        return isinstance(obj, str | os.PathLike)

    def save(self, obj: Any, dest: Path, **options: Any) -> dict[str, Any]:
        source = Path(obj)
        refuse_options(self.name, options)
        if not source.exists():
            raise InvalidInput(f"model path {str(source)!r} does not exist")
        if source.is_dir():
            shutil.copytree(source, dest / source.name)
        else:
            shutil.copy2(source, dest / source.name)
        return {"path": source.name}

    def load(self, root: Path, options: dict[str, Any]) -> Any:
        return root / str(options["path"])

    def signature(self, obj: Any, example: Any) -> dict[str, Any] | None:
        return None


FLAVOR = FilesFlavor()
