"""Events and webhooks as rules: which audit actions are events, what a delivery's body and
signature are, how long to wait before a retry, and which destinations are allowed.

An event is an audit event seen through ``EVENT_TYPES``, queued for delivery in the
transaction that records it; its id is the event's place in the chain (``evt_<seq>``),
stable across retries and redeliveries, which is what a receiver deduplicates on.
Signatures follow the ``t=<unix time>,v1=<hex HMAC-SHA256 of "<t>.<body>">`` scheme, so
a receiver checks both that Modelyard sent the body and that it was sent recently
(``verify_signature``).
"""

from __future__ import annotations

import hashlib
import hmac
import ipaddress
import json
import re
import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum
from typing import Any
from urllib.parse import SplitResult, quote, urlsplit

from modelyard.domain.codec import Record
from modelyard.domain.entities import AuditEvent
from modelyard.domain.nonfinite import as_text, spell_nonfinite
from modelyard.errors import InvalidInput, Unauthenticated

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
IPNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network

# audit action -> event type. Requests are named for what happened to them; the rest keep
# the action's name. Identity (users, tokens, refusals) and run details stay out: they are
# for the audit log, not for outside receivers.
EVENT_TYPES: dict[str, str] = {
    "model.create": "model.create",
    "model.delete": "model.delete",
    "model.rename": "model.rename",
    "version.register": "version.register",
    "version.transition": "version.transition",
    "version.rollback": "version.rollback",
    "version.delete": "version.delete",
    "tags.set": "tags.set",
    "tags.delete": "tags.delete",
    "description.set": "description.set",
    "alias.set": "alias.set",
    "alias.delete": "alias.delete",
    "policy.set": "policy.set",
    "request.create": "request.created",
    "request.approve": "request.approved",
    "request.reject": "request.rejected",
    "request.applied": "request.applied",
    "request.cancelled": "request.cancelled",
    "dataset.register": "dataset.register",
    "run.start": "run.start",
    "run.end": "run.end",
}
ALL_EVENTS = "*"
PING = "ping"  # what 'webhooks test' sends; never an audit event
SIGNATURE_HEADER = "Modelyard-Signature"
REPLAY_WINDOW = 300  # seconds a signature's timestamp may differ from the receiver's clock
MIN_SECRET, MAX_SECRET = 16, 256
MAX_URL = 2048
# Instance metadata services hand out cloud credentials: never a webhook's destination.
METADATA_ADDRESSES = frozenset(ipaddress.ip_address(a) for a in (
    "169.254.169.254", "169.254.170.2", "100.100.100.200", "fd00:ec2::254"))
_HOST_RE = re.compile(r"[a-z0-9.:_-]+", re.ASCII)
_DOT_SEGMENT = re.compile(r"(?:^|/)(?:\.|%2e){1,2}(?:/|$)", re.IGNORECASE)


class WebhookStatus(StrEnum):
    ACTIVE = "active"
    DISABLED = "disabled"  # by an admin
    PAUSED = "paused"  # by the worker, after failing for too long (status_reason says why)


class DeliveryTrigger(StrEnum):
    WORKER = "worker"  # the event worker, in order
    TEST = "test"  # 'webhooks test': a ping
    REDELIVER = "redeliver"  # an admin asked to send an earlier delivery again


@dataclass(frozen=True)
class Webhook(Record):
    """A subscription; ``pending``: events queued for it, not yet delivered. The secret is
    never part of it."""

    id: int
    url: str
    events: list[str]
    model: str | None
    status: WebhookStatus
    status_reason: str
    created_by: str
    created_at: datetime
    pending: int
    status_changed_at: datetime | None = None


@dataclass(frozen=True)
class Delivery(Record):
    """One attempt to deliver one event (or ping) to one webhook."""

    id: int
    webhook_id: int
    event_id: str
    event_type: str
    seq: int | None  # the audit event delivered; None for a ping
    attempt: int  # 1 for the first try of this event at this webhook
    trigger: DeliveryTrigger
    ok: bool
    status_code: int | None  # None when no response arrived
    latency_ms: int
    response: str  # the start of the response body
    error: str
    at: datetime


class SignatureError(Unauthenticated):
    """A delivery's signature header does not prove it came from Modelyard just now."""


class DestinationRefused(InvalidInput):
    """A URL the allow-list or the address rules forbid (server-side request forgery)."""


# -- subscriptions ---------------------------------------------------------------------
def check_events(events: str | Iterable[str]) -> list[str]:
    """The event types a subscription asks for, sorted and unique; ``*`` alone means all."""
    chosen = sorted({events} if isinstance(events, str) else {str(e) for e in events})
    if not chosen:
        raise InvalidInput("a webhook needs at least one event type",
                           hint=f"for example --event version.transition, or --event "
                                f"'{ALL_EVENTS}' for all")
    if ALL_EVENTS in chosen:
        if len(chosen) > 1:
            raise InvalidInput(f"'{ALL_EVENTS}' already means every event type: give it alone")
        return chosen
    known = set(EVENT_TYPES.values())
    unknown = [e for e in chosen if e not in known]
    if unknown:
        raise InvalidInput(f"unknown event type {unknown[0]!r}",
                           hint="expected one of " + ", ".join(sorted(known)))
    return chosen


def actions_for(events: Sequence[str]) -> list[str]:
    """The audit actions whose events a subscription to ``events`` receives."""
    return sorted(a for a, t in EVENT_TYPES.items() if ALL_EVENTS in events or t in events)


def check_secret(secret: str) -> str:
    if not (MIN_SECRET <= len(secret) <= MAX_SECRET) or not secret.isprintable() \
            or not secret.isascii():
        raise InvalidInput(f"a webhook secret is {MIN_SECRET} to {MAX_SECRET} printable ASCII "
                           "characters", hint="leave it out and one is made for you")
    return secret


# -- the body and its signature ----------------------------------------------------------
def event_id(seq: int) -> str:
    return f"evt_{seq}"


def event_body(event: AuditEvent, public_url: str | None) -> dict[str, Any]:
    """What a receiver gets for an audit event. ``data`` is the event's before and after as
    the audit log holds them; ``audit_hash`` ties the delivery to the hash chain."""
    kind = EVENT_TYPES[event.action]
    return {
        "id": event_id(event.seq), "seq": event.seq, "type": kind, "model": event.model,
        "version": event.version, "actor": event.actor, "via": event.via,
        "at": event.at.isoformat(),
        "data": {"before": event.before, "after": event.after, "comment": event.comment},
        "link": _link(event, public_url), "audit_hash": event.hash,
        "text": _summary(kind, event),
    }


def ping_body(ping_id: str, webhook_id: int, at: datetime) -> dict[str, Any]:
    return {"id": ping_id, "seq": None, "type": PING, "model": None, "version": None,
            "actor": None, "via": None, "at": at.isoformat(),
            "data": {"webhook": webhook_id}, "link": None, "audit_hash": None,
            "text": f"[modelyard] ping to webhook {webhook_id}"}


def encode_body(body: dict[str, Any]) -> bytes:
    """The exact bytes sent and signed (receivers verify these bytes, never a re-encoding):
    strict JSON, a NaN or infinite metric spelt ``"NaN"``/``"Infinity"``/``"-Infinity"``
    so any receiver's parser reads it."""
    return json.dumps(spell_nonfinite(body, as_text), sort_keys=True, separators=(",", ":"),
                      default=str, allow_nan=False).encode()


def _link(event: AuditEvent, public_url: str | None) -> str | None:
    """The REST address of what the event is about, on the server ``public_url`` names."""
    if not public_url:
        return None
    base, after = public_url.rstrip("/") + "/api/v1", event.after or {}
    if event.action.startswith("request.") and "request" in after:
        return f"{base}/get-request?request_id={int(after['request'])}"
    if event.action.startswith("run.") and "run_id" in after:
        return f"{base}/get-run?run_id={quote(str(after['run_id']))}"
    if event.model is not None and event.version is not None:
        return f"{base}/get-version?name_or_uri={quote(event.model)}&version={event.version}"
    if event.model is not None:
        return f"{base}/get-model?name={quote(event.model)}"
    return None


def _summary(kind: str, event: AuditEvent) -> str:
    """One line for chat tools that show a ``text`` field."""
    subject = event.model or ""
    if event.version is not None:
        subject += f" v{event.version}"
    before, after = event.before or {}, event.after or {}
    field = next((f for f in ("stage", "name") if f in before and f in after), None)
    change = f" {before[field]} -> {after[field]}" if field else ""
    return f"[modelyard] {kind} {subject}{change} by {event.actor}".replace("  ", " ")


def sign(secret: str, timestamp: int, body: bytes) -> str:
    """The signature header's value: the timestamp, and HMAC-SHA256 over "<t>.<body>"."""
    mac = hmac.new(secret.encode(), str(timestamp).encode() + b"." + body, hashlib.sha256)
    return f"t={timestamp},v1={mac.hexdigest()}"


def verify_signature(secret: str, header: str, body: bytes, *, now: float | None = None,
                     window: int = REPLAY_WINDOW) -> int:
    """Check a delivery as a receiver should; return its timestamp or raise SignatureError.

    The HMAC must match the raw body and the timestamp it was signed with, and that
    timestamp must be within ``window`` seconds of ``now``: a captured delivery replayed
    later fails. Within the window, deduplicate on the body's ``id``."""
    fields: dict[str, list[str]] = {}
    for part in header.split(","):
        key, _, value = part.strip().partition("=")
        fields.setdefault(key, []).append(value)
    stamps, macs = fields.get("t", []), fields.get("v1", [])
    if len(stamps) != 1 or not (stamps[0].isascii() and stamps[0].isdigit()) or not macs:
        raise SignatureError(f"malformed {SIGNATURE_HEADER} header")
    timestamp = int(stamps[0])
    if abs((time.time() if now is None else now) - timestamp) > window:
        raise SignatureError("the signature's timestamp is outside the replay window")
    expected = sign(secret, timestamp, body).rpartition("v1=")[2]
    if not any(hmac.compare_digest(expected, mac) for mac in macs):
        raise SignatureError("the signature does not match the body")
    return timestamp


def retry_delay(attempt: int, *, base: float, cap: float, jitter: float) -> float:
    """Seconds to wait after failed attempt ``attempt`` (1-based): ``base`` doubling up to
    ``cap``, scaled by a random factor in [0.5, 1) (``jitter`` in [0, 1)) so receivers that
    come back are not hit by every subscription at once."""
    return min(cap, base * 2.0 ** min(attempt - 1, 60)) * (0.5 + jitter / 2)


# -- destinations ------------------------------------------------------------------------
@dataclass(frozen=True)
class Target:
    """A webhook URL as checked: the request is built from these parts (the host pinned to
    an address that passed the checks), never re-parsed, so no parser disagrees."""

    scheme: str
    host: str
    port: int
    path: str  # with the query, if any

    @property
    def origin(self) -> str:
        """Scheme, host and port: what the audit log records of a URL (its path may be a
        credential, as chat services' webhook URLs are)."""
        return f"{self.scheme}://{self.host_header}"

    @property
    def host_header(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        default = 443 if self.scheme == "https" else 80
        return host if self.port == default else f"{host}:{self.port}"

    def url_at(self, address: IPAddress) -> str:
        host = f"[{address}]" if address.version == 6 else str(address)
        return f"{self.scheme}://{host}:{self.port}{self.path}"


def parse_url(url: str) -> Target:
    """A webhook URL's parts: http(s), an ASCII host, no user name or password."""
    if not isinstance(url, str) or len(url) > MAX_URL or not url.isprintable() or " " in url:
        raise DestinationRefused(f"invalid webhook URL {url[:80]!r}")
    parts = _split(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise DestinationRefused(f"invalid webhook URL {url[:80]!r}: expected http(s)://HOST/…")
    if parts.username is not None or parts.password is not None:
        raise DestinationRefused("a webhook URL may not carry a user name or password",
                                 hint="authenticate receivers with the signature instead")
    host = parts.hostname
    if not _HOST_RE.fullmatch(host):
        raise DestinationRefused(f"invalid host {host[:80]!r} in the webhook URL",
                                 hint="write an international name in its xn-- form")
    if _DOT_SEGMENT.search(parts.path):
        raise DestinationRefused("a webhook URL may not contain . or .. path segments",
                                 hint="write the path the receiver serves, without them")
    port = parts.port or (443 if parts.scheme == "https" else 80)
    path = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
    return Target(parts.scheme, host, port, path)


def _split(url: str) -> SplitResult:
    try:
        parts = urlsplit(url)
        _ = parts.port  # raises on a port that is not a number in range
    except ValueError:
        raise DestinationRefused(f"invalid webhook URL {url[:80]!r}") from None
    return parts


@dataclass(frozen=True)
class AllowEntry:
    text: str
    scheme: str  # a bare host entry allows https only
    host: str
    port: int
    path: str | None  # None: any path

    def permits(self, target: Target) -> bool:
        if (target.scheme, target.host, target.port) != (self.scheme, self.host, self.port):
            return False
        if self.path is None or target.path == self.path:
            return True
        prefix = self.path if self.path.endswith("/") else self.path + "/"
        return target.path.startswith(prefix) or target.path.startswith(self.path + "?")


@dataclass(frozen=True)
class AllowList:
    """Where webhooks may point (``MODELYARD_WEBHOOK_ALLOW``, comma separated): URL
    prefixes (``https://ci.example.com/hooks/``), hosts (``hooks.example.com``: https on
    443, or ``host:8443``), and networks (``10.1.0.0/16``) whose private addresses a
    listed host may resolve to. Empty allows nothing."""

    entries: tuple[AllowEntry, ...] = ()
    networks: tuple[IPNetwork, ...] = ()

    @classmethod
    def parse(cls, text: str) -> AllowList:
        entries: list[AllowEntry] = []
        networks: list[IPNetwork] = []
        for item in (i for i in re.split(r"[,\s]+", text.strip()) if i):
            if "://" in item:
                target = parse_url(item)
                entries.append(AllowEntry(item, target.scheme, target.host, target.port,
                                          target.path.partition("?")[0]))
            elif "/" in item:
                try:
                    networks.append(ipaddress.ip_network(item, strict=False))
                except ValueError:
                    raise InvalidInput(f"invalid network {item!r} in MODELYARD_WEBHOOK_ALLOW",
                                       hint="write it as 10.1.0.0/16") from None
            else:
                target = parse_url(f"https://{item}/")
                entries.append(AllowEntry(item, "https", target.host, target.port, None))
        return cls(tuple(entries), tuple(networks))

    def entry_for(self, target: Target) -> AllowEntry:
        for entry in self.entries:
            if entry.permits(target):
                return entry
        allowed = ", ".join(e.text for e in self.entries) or "nothing yet"
        raise DestinationRefused(
            f"{target.origin}{target.path.partition('?')[0]} is not in the webhook "
            f"allow-list ({allowed})",
            hint="an admin adds the URL prefix or host to MODELYARD_WEBHOOK_ALLOW on the "
                 "server and the event workers")

    def check_address(self, entry: AllowEntry, address: IPAddress) -> None:
        """Refuse an address the target resolved to: cloud metadata always; loopback,
        private, link-local and other non-public addresses unless the entry names that
        address itself or it is in a listed network."""
        if address.version == 6 and address.ipv4_mapped is not None:
            address = address.ipv4_mapped
        if address in METADATA_ADDRESSES:
            raise DestinationRefused(f"{address} is a cloud metadata address: never allowed")
        if _literal(entry.host) == address or any(address in n for n in self.networks):
            return
        if address.is_global and not address.is_multicast:
            return
        kind = ("loopback" if address.is_loopback else "link-local" if address.is_link_local
                else "private" if address.is_private else "non-public")
        raise DestinationRefused(
            f"{entry.host} resolves to {address}, a {kind} address",
            hint="allow it explicitly: a URL prefix with that address, or its network "
                 "(e.g. 10.1.0.0/16) in MODELYARD_WEBHOOK_ALLOW")


def _literal(host: str) -> IPAddress | None:
    try:
        return ipaddress.ip_address(host)
    except ValueError:
        return None
