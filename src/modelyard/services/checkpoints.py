"""Signed audit checkpoints: the chain head, signed with a key the database never sees.

Anyone who can write the database can recompute every hash of the audit chain, so the chain
alone cannot prove that history was not rewritten. A checkpoint is a small JSON document
(sequence number, hash, time, registry identity) signed with an Ed25519 key kept in a file
outside the database. Shipped somewhere the database administrator cannot rewrite, it later
proves that the log still extends it: the event at that sequence exists with that hash, and
the chain from there to the head is intact.
"""

from __future__ import annotations

import base64
import binascii
import json
import os
import re
from dataclasses import asdict, dataclass
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from sqlalchemy import Connection

from modelyard.domain.audit_report import CheckpointCheck
from modelyard.errors import AlreadyExists, IntegrityError, InvalidInput
from modelyard.storage.content.durability import fsync_dir
from modelyard.storage.content.hashing import hash_bytes
from modelyard.storage.sql import audit_log as audit

if TYPE_CHECKING:  # imported on first use: opening a registry does not pay for cryptography
    from cryptography.hazmat.primitives.asymmetric.ed25519 import (
        Ed25519PrivateKey,
        Ed25519PublicKey,
    )

FORMAT = "modelyard-audit-checkpoint"
FORMAT_VERSION = 1
KEY_ENV = "MODELYARD_AUDIT_KEY"
PUBLIC_KEY_ENV = "MODELYARD_AUDIT_PUBLIC_KEY"
KEYGEN_HINT = "create a key with 'modelyard audit keygen FILE'"
_HASH = re.compile(r"blake3:[0-9a-f]{64}")


@dataclass(frozen=True)
class Checkpoint:
    """The audit chain's head at one moment, and the signature that vouches for it."""

    seq: int
    hash: str
    event_at: str | None
    at: str
    registry: str
    """The hash of the registry's first event (the genesis hash for an empty log)."""
    registry_url: str
    key_id: str
    signature: str = ""
    format: str = FORMAT
    format_version: int = FORMAT_VERSION

    def signed_bytes(self) -> bytes:
        """Canonical JSON of every field but the signature: what the key signs."""
        fields = {k: v for k, v in asdict(self).items() if k != "signature"}
        return json.dumps(fields, sort_keys=True, separators=(",", ":")).encode()

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), indent=2, sort_keys=True) + "\n"


# -- keys ----------------------------------------------------------------------------------
def generate_key(path: str | os.PathLike[str]) -> tuple[Path, Path]:
    """Create an Ed25519 key at ``path`` (mode 0600) and its public half at ``path.pub``."""
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

    private_path = Path(path)
    public_path = Path(f"{private_path}.pub")
    for existing in (private_path, public_path):
        if existing.exists():
            raise AlreadyExists(f"{existing} already exists; refusing to overwrite a key",
                                hint="choose another FILE, or move the old key away first")
    key = Ed25519PrivateKey.generate()
    private_pem = key.private_bytes(serialization.Encoding.PEM,
                                    serialization.PrivateFormat.PKCS8,
                                    serialization.NoEncryption())
    _publish_new(private_path, private_pem, 0o600)
    _publish_new(public_path, _public_pem(key.public_key()), 0o644)
    return private_path, public_path


def load_private_key(path: str | os.PathLike[str] | None = None) -> Ed25519PrivateKey:
    """The signing key from ``path``, else from ``$MODELYARD_AUDIT_KEY``."""
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

    chosen = path if path is not None else os.environ.get(KEY_ENV)
    if not chosen:
        raise InvalidInput(f"no audit key: pass --key FILE or set {KEY_ENV}", hint=KEYGEN_HINT)
    data = _read_key(chosen)
    try:
        key = serialization.load_pem_private_key(data, password=None)
    except (ValueError, TypeError):
        if b"PUBLIC KEY" in data:
            raise InvalidInput(f"{chosen} is a public key; signing needs the private key file",
                               hint="pass the FILE given to 'modelyard audit keygen', not its "
                                    ".pub") from None
        raise InvalidInput(f"{chosen} is not an unencrypted PEM private key",
                           hint=KEYGEN_HINT) from None
    if not isinstance(key, Ed25519PrivateKey):
        raise InvalidInput(f"{chosen} is not an Ed25519 key", hint=KEYGEN_HINT)
    return key


def load_public_key(path: str | os.PathLike[str] | None = None) -> Ed25519PublicKey:
    """The verifying key from ``path``, else ``$MODELYARD_AUDIT_PUBLIC_KEY``, else the
    public half of ``$MODELYARD_AUDIT_KEY``."""
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

    chosen = path if path is not None else os.environ.get(PUBLIC_KEY_ENV)
    if not chosen:
        if os.environ.get(KEY_ENV):
            return load_private_key().public_key()
        raise InvalidInput(f"no public key to check the checkpoint with: pass --public-key FILE "
                           f"or set {PUBLIC_KEY_ENV}",
                           hint="use the .pub file that 'modelyard audit keygen' wrote")
    data = _read_key(chosen)
    try:
        key = serialization.load_pem_public_key(data)
    except ValueError:
        try:  # a private key file works too: its public half is derived
            return load_private_key(chosen).public_key()
        except InvalidInput:
            raise InvalidInput(f"{chosen} is not a PEM public key",
                               hint="use the .pub file that 'modelyard audit keygen' wrote"
                               ) from None
    if not isinstance(key, Ed25519PublicKey):
        raise InvalidInput(f"{chosen} is not an Ed25519 public key",
                           hint="use the .pub file that 'modelyard audit keygen' wrote")
    return key


def key_id(public: Ed25519PublicKey) -> str:
    """A short, stable name for a key: the BLAKE3 of its raw 32 bytes."""
    from cryptography.hazmat.primitives import serialization

    raw = public.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
    return "ed25519:" + hash_bytes(raw).removeprefix("blake3:")[:16]


# -- checkpoints -----------------------------------------------------------------------------
def sign(private: Ed25519PrivateKey, *, seq: int, hash: str, event_at: datetime | None,
         at: datetime, registry: str, registry_url: str) -> Checkpoint:
    unsigned = Checkpoint(seq=seq, hash=hash, event_at=event_at.isoformat() if event_at else None,
                          at=at.isoformat(), registry=registry, registry_url=registry_url,
                          key_id=key_id(private.public_key()))
    signature = base64.b64encode(private.sign(unsigned.signed_bytes())).decode()
    return Checkpoint(**{**unsigned.to_dict(), "signature": signature})


def verify_signature(checkpoint: Checkpoint, public: Ed25519PublicKey) -> None:
    """Refuse a checkpoint this key did not sign, or one edited after signing."""
    from cryptography.exceptions import InvalidSignature

    given = key_id(public)
    if checkpoint.key_id != given:
        raise IntegrityError(
            f"the checkpoint was signed by key {checkpoint.key_id}, not by the given public key "
            f"{given}", hint="pass the public key of the key that wrote the checkpoint "
                             "(--public-key FILE)")
    try:
        public.verify(base64.b64decode(checkpoint.signature, validate=True),
                      checkpoint.signed_bytes())
    except (InvalidSignature, binascii.Error, ValueError):
        raise IntegrityError(
            "the checkpoint's signature does not verify: it was edited after signing or forged",
            hint="use an untouched copy of the checkpoint from where it was shipped") from None


def read_checkpoint(path: str | os.PathLike[str]) -> Checkpoint:
    """Parse a checkpoint file; anything malformed is an ``InvalidInput``, never a traceback."""
    try:
        document = json.loads(Path(path).read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise InvalidInput(f"checkpoint file {os.fspath(path)} does not exist",
                           hint="write one with 'modelyard audit checkpoint -o FILE'") from None
    except (OSError, UnicodeDecodeError, ValueError) as exc:
        raise InvalidInput(f"cannot read checkpoint {os.fspath(path)}: {exc}",
                           hint="pass a file written by 'modelyard audit checkpoint'") from None
    return parse_checkpoint(document, source=os.fspath(path))


def parse_checkpoint(document: Any, *, source: str = "checkpoint") -> Checkpoint:
    def bad(why: str) -> InvalidInput:
        return InvalidInput(f"{source} is not a Modelyard audit checkpoint: {why}",
                            hint="pass a file written by 'modelyard audit checkpoint'")

    if not isinstance(document, dict) or document.get("format") != FORMAT:
        raise bad(f"its 'format' is not {FORMAT!r}")
    version = document.get("format_version")
    if version != FORMAT_VERSION:
        raise InvalidInput(f"{source} has checkpoint format version {version!r}; this Modelyard "
                           f"reads version {FORMAT_VERSION}",
                           hint="use the Modelyard version that wrote it")
    expected = {f: t for f, t in (("seq", int), ("hash", str), ("at", str), ("registry", str),
                                  ("registry_url", str), ("key_id", str), ("signature", str))}
    for name, kind in expected.items():
        value = document.get(name)
        if not isinstance(value, kind) or isinstance(value, bool):
            raise bad(f"field {name!r} is missing or not a {kind.__name__}")
    if document.get("event_at") is not None and not isinstance(document["event_at"], str):
        raise bad("field 'event_at' is not a string")
    if document["seq"] < 0 or not _HASH.fullmatch(document["hash"]):
        raise bad("'seq' must be ≥ 0 and 'hash' a blake3 digest")
    extra = set(document) - {*expected, "event_at", "format", "format_version"}
    if extra:
        raise bad(f"unknown field(s) {', '.join(sorted(extra))}")
    return Checkpoint(**document)


def write_checkpoint(checkpoint: Checkpoint, path: str | os.PathLike[str]) -> Path:
    """Write atomically (temp file, fsync, rename): a reader never sees half a checkpoint."""
    target = Path(path)
    tmp = target.with_name(f".{target.name}.{os.getpid()}.tmp")
    try:
        _write_new(tmp, checkpoint.to_json().encode(), 0o644)
        os.replace(tmp, target)
        fsync_dir(str(target.parent))
    except FileNotFoundError:
        raise InvalidInput(f"cannot write {target}: its folder does not exist",
                           hint="create the folder first or choose another -o FILE") from None
    finally:
        tmp.unlink(missing_ok=True)
    return target


def _public_pem(public: Ed25519PublicKey) -> bytes:
    from cryptography.hazmat.primitives import serialization

    return public.public_bytes(serialization.Encoding.PEM,
                               serialization.PublicFormat.SubjectPublicKeyInfo)


def _read_key(path: str | os.PathLike[str]) -> bytes:
    try:
        return Path(path).read_bytes()
    except FileNotFoundError:
        raise InvalidInput(f"key file {os.fspath(path)} does not exist", hint=KEYGEN_HINT
                           ) from None
    except OSError as exc:
        raise InvalidInput(f"cannot read key file {os.fspath(path)}: {exc.strerror}") from None


def _write_new(path: Path, data: bytes, mode: int) -> None:
    """Create ``path`` (never overwriting) with ``mode`` from the first byte, and fsync it."""
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, mode)
    except FileExistsError:
        raise AlreadyExists(f"{path} already exists", hint="choose another file") from None
    except FileNotFoundError:
        raise InvalidInput(f"cannot create {path}: its folder does not exist",
                           hint="create the folder first") from None
    with os.fdopen(fd, "wb") as f:
        f.write(data)
        f.flush()
        os.fsync(f.fileno())


def _publish_new(path: Path, data: bytes, mode: int) -> None:
    """Write a temp file, then hard-link it into place: whole or absent, never overwriting."""
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    _write_new(tmp, data, mode)
    try:
        os.link(tmp, path)
    except FileExistsError:
        raise AlreadyExists(f"{path} already exists; refusing to overwrite a key",
                            hint="choose another FILE, or move the old key away first") from None
    finally:
        tmp.unlink(missing_ok=True)
    fsync_dir(str(path.parent))




# -- against the database ------------------------------------------------------------------
def check_extends(conn: Connection, checkpoint: Checkpoint, *, chain_ok: bool) -> CheckpointCheck:
    """Whether the log in ``conn`` still extends ``checkpoint`` (its signature already checked)."""
    def result(reason: str = "") -> CheckpointCheck:
        return CheckpointCheck(checkpoint.seq, checkpoint.hash, not reason, reason)

    if checkpoint.seq == 0:
        return result() if chain_ok else result(_BROKEN)
    first = audit.event_at(conn, 1)
    if first is not None and first.hash != checkpoint.registry:
        return result("the log's first event differs from the checkpoint's: the checkpoint is of "
                      "another registry, or this log was rewritten from its start")
    event = audit.event_at(conn, checkpoint.seq)
    if event is None:
        last = audit.last_event(conn)
        end = max(last.seq if last else 0, 0)
        if end < checkpoint.seq:
            return result(f"the log ends at event {end} but the checkpoint was taken at event "
                          f"{checkpoint.seq}: events were removed from its tail")
        return result(f"event {checkpoint.seq} is missing from the log")
    if event.hash != checkpoint.hash:
        return result(f"event {checkpoint.seq} has hash {event.hash[:19]}… but the checkpoint "
                      f"says {checkpoint.hash[:19]}…: the log was rewritten since the checkpoint")
    return result() if chain_ok else result(_BROKEN)


_BROKEN = "the chain from it to the head is broken (see the chain check)"
