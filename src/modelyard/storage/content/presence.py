"""Is a claimed file or tree wholly in the store, with the size the claim gives?

Metadata operations call this before they commit, so a version never points at content
that is missing or different from what its row says, whoever stored it (the embedded
content plane in this process, or a remote client that uploaded by digest).
"""

from __future__ import annotations

from modelyard.domain.content import StoredContent
from modelyard.errors import IntegrityError, InvalidInput, NotFound
from modelyard.storage.content.objects import ObjectStore

_UPLOAD_FIRST = "store the content first (the client uploads it before this call)"


def check_present(store: ObjectStore, content: StoredContent) -> None:
    """Raise InvalidInput unless ``content`` is in ``store`` exactly as described.

    A file: its object exists with that size. A directory: its manifest object verifies,
    matches the size and file count, and every file it lists exists.
    """
    try:
        if content.kind == "file":
            size, count, missing = store.size(content.digest), 1, 0
        else:
            manifest = store.get_manifest(content.digest)
            size, count = manifest.total_size, manifest.file_count
            wanted = {e.digest for e in manifest.entries}
            missing = len(wanted - store.exists_many(wanted))
    except NotFound:
        raise InvalidInput(f"content {content.digest} is not in the store",
                           hint=_UPLOAD_FIRST, digest=content.digest) from None
    except (IntegrityError, InvalidInput) as exc:
        raise InvalidInput(f"content {content.digest} is not a readable {content.kind}: "
                           f"{exc.message}", digest=content.digest) from None
    if missing:
        raise InvalidInput(f"{missing} file(s) of directory {content.digest} are not in the "
                           "store", hint=_UPLOAD_FIRST, digest=content.digest)
    if (size, count) != (content.size, content.file_count):
        raise InvalidInput(
            f"content {content.digest} holds {count} file(s), {size} bytes, not the "
            f"{content.file_count} file(s), {content.size} bytes described",
            digest=content.digest)
