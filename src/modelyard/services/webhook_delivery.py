"""Delivering events: the settings, the sealed secrets, the guarded POST, and the worker.

The audit log queues a delivery in the transaction that records its event (the outbox,
``storage/sql/outbox.py``), so a committed change is never missed and one that rolled back
is never sent. The worker makes one attempt in three steps: claim (a short transaction
leases the head of one queue, ``FOR UPDATE SKIP LOCKED``, and numbers the attempt), POST
(no transaction open, so a slow receiver holds no lock and, on SQLite, no registry writer
waits), and finish (log the attempt; a 2xx removes the row from the outbox). So two workers
never make the same attempt, a model's events reach a subscription in order (its next one
waits until this one is delivered), and a worker that dies mid-attempt leaves the row
leased until ``lease`` passes, when another sends it again with the same event id (at
least once). Failures are retried with exponential backoff and jitter until ``retry_for``
has passed, then the subscription is paused with the reason.

Every POST goes through ``Sender``: the URL must be in the allow-list, and every address
its host resolves to must pass the address rules; the request then goes to one of those
checked addresses (the host name kept for the Host header and TLS), so a DNS answer that
changes between check and connect cannot redirect it. No redirects are followed and no
proxy from the environment is used.
"""

from __future__ import annotations

import ipaddress
import os
import random
import secrets
import socket
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from types import TracebackType
from typing import TYPE_CHECKING, Any

from sqlalchemy import Connection

from modelyard.domain.principal import SYSTEM_USER
from modelyard.domain.webhooks import (
    EVENT_TYPES,
    SIGNATURE_HEADER,
    AllowList,
    Delivery,
    DeliveryTrigger,
    DestinationRefused,
    IPAddress,
    Target,
    WebhookStatus,
    encode_body,
    event_body,
    event_id,
    parse_url,
    retry_delay,
    sign,
)
from modelyard.errors import IntegrityError, InvalidInput, ModelyardError
from modelyard.services.base import Clock, utc_now
from modelyard.storage.sql import audit_log as audit
from modelyard.storage.sql import webhooks_repository as hooks
from modelyard.storage.sql.database import Database

if TYPE_CHECKING:
    import httpx
    from cryptography.fernet import MultiFernet

EXCERPT = 512  # characters of a receiver's answer kept in the delivery log
ATTEMPT_TIMEOUTS = 3  # an attempt lasts at most this many timeouts (see WebhookSettings)
KEY_HINT = "make a key with 'modelyard webhooks key' and set it on the server and the workers"


@dataclass(frozen=True)
class WebhookSettings:
    """What deliveries need to know (``from_environment`` reads ``MODELYARD_WEBHOOK_*``).

    ``keys``: Fernet keys; the first seals new secrets, any opens them (rotation).
    ``retry_for``: seconds a failing event is retried before its subscription is paused;
    ``lease``: seconds an attempt may take before another worker may make the next one.
    ``timeout`` bounds connecting, sending and each read of the answer (the answer's excerpt
    is read for at most ``timeout`` in all), so an attempt lasts at most three timeouts;
    a lease shorter than that would let a second worker send the next attempt while the
    first is still waiting, so it is refused."""

    allow: AllowList = field(default_factory=AllowList)
    keys: tuple[str, ...] = field(default=(), repr=False)
    timeout: float = 5.0
    retry_for: float = 24 * 3600.0
    backoff: float = 10.0
    backoff_cap: float = 3600.0
    lease: float = 60.0
    interval: float = 1.0
    public_url: str | None = None

    def __post_init__(self) -> None:
        if self.lease <= ATTEMPT_TIMEOUTS * self.timeout:
            raise InvalidInput(
                f"MODELYARD_WEBHOOK_LEASE ({self.lease:g}s) must be more than "
                f"{ATTEMPT_TIMEOUTS} times MODELYARD_WEBHOOK_TIMEOUT ({self.timeout:g}s)",
                hint=f"an attempt may take {ATTEMPT_TIMEOUTS} timeouts (connect, send, "
                     "answer); set the lease above that, or lower the timeout")

    @classmethod
    def from_environment(cls, env: Mapping[str, str] | None = None) -> WebhookSettings:
        env = os.environ if env is None else env
        keys = tuple(k for k in env.get("MODELYARD_WEBHOOK_KEY", "").replace(",", " ").split())
        return cls(allow=AllowList.parse(env.get("MODELYARD_WEBHOOK_ALLOW", "")), keys=keys,
                   timeout=_seconds(env, "MODELYARD_WEBHOOK_TIMEOUT", cls.timeout),
                   retry_for=_seconds(env, "MODELYARD_WEBHOOK_RETRY_FOR", cls.retry_for),
                   backoff=_seconds(env, "MODELYARD_WEBHOOK_BACKOFF", cls.backoff),
                   lease=_seconds(env, "MODELYARD_WEBHOOK_LEASE", cls.lease),
                   interval=_seconds(env, "MODELYARD_WEBHOOK_INTERVAL", cls.interval),
                   public_url=env.get("MODELYARD_PUBLIC_URL") or None)


def _seconds(env: Mapping[str, str], name: str, default: float) -> float:
    text = env.get(name, "").strip()
    try:
        value = float(text) if text else default
    except ValueError:
        value = -1.0
    if not 0 <= value < 10**7:
        raise InvalidInput(f"{name} must be a number of seconds, not {text!r}")
    return value


class SecretBox:
    """Webhook secrets sealed at rest (Fernet: AES-128-CBC and HMAC-SHA256) under the keys
    of ``MODELYARD_WEBHOOK_KEY``, so a copy of the database alone cannot sign deliveries.
    A hash would not do: the worker needs the secret itself to sign."""

    def __init__(self, keys: Sequence[str]) -> None:
        if not keys:
            raise InvalidInput("webhook secrets are stored encrypted, and MODELYARD_WEBHOOK_KEY "
                               "is not set", hint=KEY_HINT)
        from cryptography.fernet import Fernet, MultiFernet

        try:
            self._fernet: MultiFernet = MultiFernet([Fernet(key.encode()) for key in keys])
        except ValueError:
            raise InvalidInput("MODELYARD_WEBHOOK_KEY is not a list of Fernet keys (32 "
                               "url-safe base64 bytes each)", hint=KEY_HINT) from None

    @staticmethod
    def new_key() -> str:
        from cryptography.fernet import Fernet

        return Fernet.generate_key().decode()

    def seal(self, secret: str) -> str:
        return self._fernet.encrypt(secret.encode()).decode()

    def open(self, sealed: str) -> str:
        from cryptography.fernet import InvalidToken

        try:
            return self._fernet.decrypt(sealed.encode()).decode()
        except InvalidToken:
            raise IntegrityError("a webhook secret does not open with MODELYARD_WEBHOOK_KEY",
                                 hint="give this process the key the secrets were sealed "
                                      "with (old keys may follow the new one, comma "
                                      "separated)") from None


def new_secret() -> str:
    return "whsec_" + secrets.token_urlsafe(32)


# -- the guarded POST ----------------------------------------------------------------------
Resolver = Callable[[str, int], list[IPAddress]]


def resolve(host: str, port: int) -> list[IPAddress]:
    """Every address ``host`` resolves to (OSError if none)."""
    found = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    return list(dict.fromkeys(ipaddress.ip_address(str(info[4][0]).partition("%")[0])
                              for info in found))


def check_destination(url: str, allow: AllowList, resolver: Resolver = resolve
                      ) -> tuple[Target, IPAddress]:
    """The URL's parts and the address to send to, once the allow-list permits the URL and
    every address its host resolves to passes; DestinationRefused if not, OSError if the
    host does not resolve."""
    target = parse_url(url)
    entry = allow.entry_for(target)
    addresses = resolver(target.host, target.port)
    if not addresses:
        raise OSError(f"{target.host} resolves to no address")
    for address in addresses:
        allow.check_address(entry, address)
    return target, addresses[0]


@dataclass(frozen=True)
class Outcome:
    """What one POST came to. ``refused``: the destination is not allowed (not retried)."""

    ok: bool
    status_code: int | None
    latency_ms: int
    response: str
    error: str
    refused: bool = False


class Sender:
    """Signs and POSTs bodies to checked destinations (see the module's docstring)."""

    def __init__(self, settings: WebhookSettings, *, resolver: Resolver = resolve,
                 wall_clock: Callable[[], float] = time.time) -> None:
        import httpx

        self.settings, self._resolver, self._wall_clock = settings, resolver, wall_clock
        self._client = httpx.Client(timeout=settings.timeout, follow_redirects=False,
                                    trust_env=False)

    def __enter__(self) -> Sender:
        return self

    def __exit__(self, kind: type[BaseException] | None, value: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.close()

    def close(self) -> None:
        self._client.close()

    def send(self, url: str, secret: str, body: dict[str, Any], *, attempt: int) -> Outcome:
        import httpx

        try:
            target, address = check_destination(url, self.settings.allow, self._resolver)
        except DestinationRefused as exc:
            return Outcome(False, None, 0, "", f"refused: {exc}", refused=True)
        except OSError as exc:
            return Outcome(False, None, 0, "", f"cannot resolve the host: {exc}")
        data = encode_body(body)
        headers = {"Host": target.host_header, "Content-Type": "application/json",
                   "User-Agent": "Modelyard-Webhooks/1", "Modelyard-Event": str(body["type"]),
                   "Modelyard-Event-Id": str(body["id"]), "Modelyard-Attempt": str(attempt),
                   SIGNATURE_HEADER: sign(secret, int(self._wall_clock()), data)}
        extensions = {"sni_hostname": target.host} if target.scheme == "https" else {}
        started = time.monotonic()
        try:
            with self._client.stream("POST", target.url_at(address), content=data,
                                     headers=headers, extensions=extensions) as response:
                excerpt = _excerpt(response, started + self.settings.timeout)
        except httpx.HTTPError as exc:
            return Outcome(False, None, _ms(started), "", f"{type(exc).__name__}: {exc}")
        ok = 200 <= response.status_code < 300
        return Outcome(ok, response.status_code, _ms(started), excerpt,
                       "" if ok else f"the receiver answered HTTP {response.status_code}")


def _excerpt(response: httpx.Response, deadline: float) -> str:
    """The start of the answer, without reading more of it than that, nor past
    ``deadline`` (a receiver that trickles its answer cannot stretch the attempt)."""
    taken = b""
    for chunk in response.iter_bytes():
        taken += chunk
        if len(taken) >= EXCERPT * 4 or time.monotonic() >= deadline:
            break
    return taken.decode("utf-8", "replace")[:EXCERPT]


def _ms(started: float) -> int:
    return int((time.monotonic() - started) * 1000)


def to_delivery(row: hooks.DeliveryRow) -> Delivery:
    return Delivery(id=row.id, webhook_id=row.webhook_id, event_id=row.event_id,
                    event_type=row.event_type, seq=row.seq, attempt=row.attempt,
                    trigger=DeliveryTrigger(row.trigger), ok=row.ok,
                    status_code=row.status_code, latency_ms=row.latency_ms,
                    response=row.response, error=row.error, at=row.at)


def log_attempt(conn: Connection, webhook_id: int, event: str, kind: str, seq: int | None,
                attempt: int, trigger: DeliveryTrigger, outcome: Outcome, at: datetime
                ) -> Delivery:
    """Record one attempt in the delivery log, whoever made it."""
    return to_delivery(hooks.insert_delivery(
        conn, webhook_id=webhook_id, event_id=event, event_type=kind, seq=seq,
        attempt=attempt, trigger=trigger.value, ok=outcome.ok,
        status_code=outcome.status_code, latency_ms=outcome.latency_ms,
        response=outcome.response, error=outcome.error, at=at))


def pause(conn: Connection, webhook_id: int, reason: str, now: datetime) -> None:
    """Pause a subscription, saying why, as the registry's own decision (audited)."""
    hooks.set_status(conn, webhook_id, WebhookStatus.PAUSED.value, reason, now)
    audit.record(conn, at=now, actor=SYSTEM_USER, action="webhook.pause",
                 after={"webhook": webhook_id, "status": WebhookStatus.PAUSED.value,
                        "reason": reason})


# -- the worker ----------------------------------------------------------------------------
class Worker:
    """Delivers queued events to active subscriptions (see the module docstring).

    Run any number of them against one database (inside each server process, or
    ``modelyard events worker``); each attempt is made by exactly one of them."""

    def __init__(self, db: Database, settings: WebhookSettings, *, clock: Clock = utc_now,
                 sender: Sender | None = None, jitter: Callable[[], float] = random.random,
                 report: Callable[[Delivery], None] | None = None) -> None:
        if settings.backoff <= 0:
            raise InvalidInput("MODELYARD_WEBHOOK_BACKOFF must be more than 0 seconds")
        self.db, self.settings, self.clock, self._jitter = db, settings, clock, jitter
        self._box = SecretBox(settings.keys)
        self._sender = sender or Sender(settings)
        self._report = report

    def close(self) -> None:
        self._sender.close()

    def run_once(self) -> list[Delivery]:
        """Make every attempt that is due now; the attempts made, in order."""
        with self.db.read() as conn:
            if not hooks.any_due(conn, self.clock()):
                return []
        made: list[Delivery] = []
        while (delivery := self.attempt_one()) is not None:
            made.append(delivery)
            if self._report is not None:
                self._report(delivery)
        return made

    def run(self, *, stop: threading.Event,
            on_error: Callable[[Exception], None] | None = None) -> None:
        """Deliver until ``stop`` is set, looking for work every ``interval`` seconds; an
        error (a database outage) is reported and waited out, not fatal."""
        while not stop.is_set():
            try:
                self.run_once()
            except ModelyardError as exc:
                if on_error is None:
                    raise
                on_error(exc)
            stop.wait(self.settings.interval)

    def attempt_one(self) -> Delivery | None:
        """Claim the next due delivery, POST it, and log the attempt (None: nothing due)."""
        now = self.clock()
        with self.db.transaction() as conn:
            claimed = hooks.claim(conn, now, now + timedelta(seconds=self.settings.lease))
            if claimed is None:
                return None
            event = audit.event_at(conn, claimed.seq)
            assert event is not None  # the log is append-only
        try:
            secret = self._box.open(claimed.secret)
        except IntegrityError as exc:  # a key missing here: pause, saying so, not loop
            outcome = Outcome(False, None, 0, "", exc.message, refused=True)
        else:
            outcome = self._sender.send(claimed.url, secret,
                                        event_body(event, self.settings.public_url),
                                        attempt=claimed.attempt)
        what = event_id(event.seq)
        with self.db.transaction() as conn:
            logged = log_attempt(conn, claimed.webhook_id, what, EVENT_TYPES[event.action],
                                 event.seq, claimed.attempt, DeliveryTrigger.WORKER, outcome,
                                 now)
            if outcome.ok:
                hooks.delivered(conn, claimed.id)
            else:
                self._retry_or_pause(conn, claimed, outcome, what, now)
        return logged

    def _retry_or_pause(self, conn: Connection, claimed: hooks.Claim, outcome: Outcome,
                        what: str, now: datetime) -> None:
        since = claimed.failing_since or now
        attempt = claimed.attempt
        delay = retry_delay(attempt, base=self.settings.backoff, cap=self.settings.backoff_cap,
                            jitter=self._jitter())
        if outcome.refused or (now - since).total_seconds() + delay > self.settings.retry_for:
            reason = (f"{what}: {outcome.error}" if outcome.refused else
                      f"gave up on {what} after {attempt} attempt{'s' if attempt > 1 else ''}"
                      f" (retries stop after {self.settings.retry_for:g}s): {outcome.error}")
            pause(conn, claimed.webhook_id, reason, now)
            hooks.schedule_retry(conn, claimed.id, attempt=attempt, failing_since=since,
                                 next_attempt_at=None)
            return
        hooks.schedule_retry(conn, claimed.id, attempt=attempt, failing_since=since,
                             next_attempt_at=now + timedelta(seconds=delay))
