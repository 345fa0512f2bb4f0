"""The dispatcher: claims due deliveries and sends them, once across instances.

Every instance runs one. A claim is a short write transaction that picks due
rows (``FOR UPDATE SKIP LOCKED`` on PostgreSQL, so two instances never pick
the same row; SQLite has a single writer, ``BEGIN IMMEDIATE``) and leases them
to this instance until ``claimed_until``. The send happens outside any
transaction; its outcome is written back with the attempt. An instance that
dies mid-send leaves a lease that expires, and the delivery is sent again
(same id) by whichever instance claims it next: at-least-once, never lost.

The dispatcher wakes when a local commit queued deliveries, or when an
instance that does not send (``webhooks.dispatch`` off) announces queued ones
on the event bus, and otherwise polls every ``webhooks.poll_seconds``
(deliveries queued by other instances, retries coming due). ``workeros
dispatcher`` runs one in a process of its own.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import hashlib
import hmac
import logging
import random
import socket
import time
import uuid
from typing import Any

import sqlalchemy as sa

from workeros.api import OutboundError, OutboundRefused, dumps_str, loads, now, users

from .service import QUEUED, WebhooksService
from .tables import attempts, deliveries, webhooks

log = logging.getLogger("workeros.webhooks")


def signature(secret: str, timestamp: int | str, body: bytes) -> str:
    """``sha256=<hex HMAC-SHA256(secret, "<timestamp>." + body)>``."""
    mac = hmac.new(secret.encode(), f"{timestamp}.".encode() + body, hashlib.sha256)
    return "sha256=" + mac.hexdigest()


#: Longest time (seconds) the outcome of a send waits to be written with the
#: next claim while other sends are still in flight.
RESULTS_DELAY = 0.1


def backoff(base: float, attempt: int) -> float:
    """Seconds before retry number ``attempt`` (1 = the first retry): ``base``
    doubling each time, with ±25 % jitter so a burst of failures spreads out."""
    return base * (2 ** (attempt - 1)) * random.uniform(0.75, 1.25)


class Dispatcher:
    def __init__(self, service: WebhooksService) -> None:
        self.service = service
        self.services = service.services
        self.db = service.db
        s = service.setting
        self.instance = f"{socket.gethostname()[:40]}-{uuid.uuid4().hex[:8]}"
        self.poll = float(s("webhooks.poll_seconds", 1.0))
        self.concurrency = max(1, int(s("webhooks.concurrency", 16)))
        self.lease = float(s("webhooks.claim_seconds", 60.0))
        self.timeout = float(s("webhooks.timeout", 10.0))
        self.base = float(s("webhooks.retry_base_seconds", 2.0))
        self.max_attempts = max(1, int(s("webhooks.max_attempts", 6)))
        #: Fewest free slots worth a claim while sends are in flight.
        self.batch = max(1, self.concurrency // 2)
        self.retention = float(s("webhooks.log_retention_days", 30))
        self._wake = asyncio.Event()
        self._sending: set[asyncio.Task[Any]] = set()
        self._task: asyncio.Task[None] | None = None
        self._unsubscribe: Any = None
        self._stopping = False
        self._pruned = 0.0
        #: Outcomes of sends not yet written back. They are written in batches,
        #: in the same transaction as the next claim (one write transaction per
        #: round, not two, nor one per delivery: on SQLite every transaction
        #: takes the single write lock the API's writes need too).
        self._results: list[dict[str, Any]] = []
        #: When the oldest outcome in ``_results`` was queued (monotonic).
        self._results_since = 0.0
        self._statements()

    def _statements(self) -> None:
        """The dispatcher's statements, built once with bind parameters: a
        statement built anew for every round costs its cache key each time,
        as much CPU as the rest of the round."""
        c = deliveries.c
        b = sa.bindparam
        due = sa.and_(c.status == "pending", c.next_attempt_at <= b("t", type_=c.next_attempt_at.type),
                      sa.or_(c.claimed_until.is_(None), c.claimed_until < b("t", type_=c.claimed_until.type)))
        ids = b("ids", expanding=True, type_=c.id.type)
        self._any_due = sa.select(c.id).where(due).limit(1)
        self._due_ids = sa.select(c.id).where(due).order_by(c.next_attempt_at, c.id)
        #: The claiming select by limit (a handful of values: the free slots).
        self._claims: dict[int, sa.Select] = {}
        self._lease_rows = deliveries.update().where(c.id.in_(ids)).values(
            claimed_until=b("until", type_=c.claimed_until.type), claimed_by=b("by", type_=c.claimed_by.type),
            attempts=c.attempts + 1)
        self._claimed_rows = (sa.select(c.id, c.event, c.body, c.attempts, webhooks.c.url, webhooks.c.headers,
                                        webhooks.c.secret, webhooks.c.active)
                              .join(webhooks, webhooks.c.id == c.webhook).where(c.id.in_(ids)))
        # Only while the lease is still ours: a delivery whose lease expired
        # mid-send may already be another instance's.
        self._write_outcome = (
            deliveries.update().where(c.id == b("_id"), c.claimed_by == b("_by"), c.attempts == b("_attempt"))
            .values(status=b("_status"), finished_at=b("_finished"), next_attempt_at=b("_due"),
                    response_status=b("_code"), error=b("_error"), claimed_until=None, claimed_by=None))
        self._live = sa.select(c.id).where(c.id.in_(ids))
        self._add_attempts = attempts.insert()

    def wake(self) -> None:
        self._wake.set()

    def start(self) -> None:
        self.service.on_queued = self.wake
        self._unsubscribe = self.services.events.subscribe(QUEUED, self._queued_elsewhere)
        self._task = asyncio.create_task(self._run(), name="webhooks-dispatcher")

    def _queued_elsewhere(self, message: dict[str, Any]) -> None:
        self._wake.set()

    async def stop(self, timeout: float = 5.0) -> None:
        """Stop claiming; let sends in flight finish (up to ``timeout``). A send
        cut short keeps its lease, which expires: it is sent again later."""
        self._stopping = True
        self.service.on_queued = None
        if self._unsubscribe is not None:
            self._unsubscribe()
            self._unsubscribe = None
        self._wake.set()
        if self._task is not None:
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await self._task
        if self._sending:
            await asyncio.wait(set(self._sending), timeout=timeout)
        for task in list(self._sending):
            task.cancel()
        for task in list(self._sending):
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task
        await self._flush_results()

    async def _run(self) -> None:
        while not self._stopping:
            self._wake.clear()
            free = self.concurrency - len(self._sending)
            claimed: list[dict[str, Any]] = []
            # Claim in batches: a claim is a write transaction, so one per
            # finished send would cost as much as the send. With sends in
            # flight, wait until half the slots are free. The outcomes of the
            # sends that freed them are written in the same transaction.
            if free >= self.batch or (free > 0 and not self._sending):
                try:
                    claimed = await self.claim(free)
                    await self._prune()
                except asyncio.CancelledError:
                    raise
                except Exception:  # the database went away for a moment: try again at the next poll
                    log.exception("claiming webhook deliveries failed")
            elif self._results and time.monotonic() - self._results_since >= RESULTS_DELAY:
                await self._flush_results()
            for row in claimed:
                task = asyncio.create_task(self.send(row), name=f"webhook-delivery:{row['id']}")
                self._sending.add(task)
                task.add_done_callback(self._sent)
            if self._stopping:
                return
            if claimed and len(claimed) == free:
                continue  # more may be due
            wait = self.poll
            if self._results:  # outcomes are not kept waiting for long
                wait = min(wait, max(0.0, self._results_since + RESULTS_DELAY - time.monotonic()))
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), wait)

    def _sent(self, task: asyncio.Task[Any]) -> None:
        self._sending.discard(task)
        if not task.cancelled() and task.exception() is not None:
            log.error("a webhook delivery task failed", exc_info=task.exception())
        if not self._stopping:
            self._wake.set()  # room for one more

    async def claim(self, limit: int) -> list[dict[str, Any]]:
        """Lease up to ``limit`` due deliveries to this instance; returns them
        with their webhook's url, headers and secret."""
        t = now()
        if not self._results:
            async with self.db.read() as conn:  # nothing due: no write transaction (SQLite's lock stays free)
                if (await conn.execute(self._any_due, {"t": t})).first() is None:
                    return []
        results, self._results = self._results, []
        try:
            async with self.db.transaction() as conn:
                if results:
                    await self._write_results(conn, results)
                claimed = await self._claim(conn, t, limit)
            if any(r["_status"] == "pending" for r in results):
                self.wake()  # a retry may come due before the next poll
            return claimed
        except Exception:
            if not results:
                raise
            # e.g. a webhook deleted mid-send: write the outcomes on their own
            # (one by one if need be), then claim.
            await self._record_batch(results)
        async with self.db.transaction() as conn:
            return await self._claim(conn, t, limit)

    async def _claim(self, conn: Any, t: dt.datetime, limit: int) -> list[dict[str, Any]]:
        q = self._claims.get(limit)
        if q is None:
            q = self._claims[limit] = self.db.for_update(self._due_ids.limit(limit), skip_locked=True)
        ids = [r.id for r in await conn.execute(q, {"t": t})]
        if not ids:
            return []
        await conn.execute(self._lease_rows, {"ids": ids, "until": t + dt.timedelta(seconds=self.lease),
                                              "by": self.instance})
        rows = [dict(r) for r in (await conn.execute(self._claimed_rows, {"ids": ids})).mappings()]
        for row in rows:
            if row["event"] == "auth.signup":
                row["body"] = await self._complete_signup(conn, row)
        return rows

    async def _complete_signup(self, conn: Any, row: dict[str, Any]) -> str:
        """A sign-up is queued before the account's row exists: its id is
        filled in from the email on the first claim (and kept for retries)."""
        body = loads(row["body"])
        payload = body.get("payload") or {}
        if payload.get("user") or not payload.get("email"):
            return row["body"]
        found = (await conn.execute(sa.select(users.c.id).where(users.c.email == payload["email"]))).first()
        if found is None:
            return row["body"]
        payload["user"] = found.id
        body["keys"] = [found.id]
        text = dumps_str(body)
        await conn.execute(deliveries.update().where(deliveries.c.id == row["id"]).values(body=text))
        return text

    async def send(self, row: dict[str, Any]) -> None:
        attempt = row["attempts"]
        status_code: int | None = None
        error: str | None = None
        permanent = False
        started = time.perf_counter()
        if not row["active"]:
            error, permanent = "The webhook is inactive", True
        else:
            body = row["body"].encode()
            stamp = int(time.time())
            headers = {**(row["headers"] or {}), "Content-Type": "application/json",
                       "User-Agent": "workeros-webhooks", "Workeros-Event": row["event"],
                       "Workeros-Delivery": row["id"], "Workeros-Timestamp": str(stamp),
                       "Workeros-Signature": signature(row["secret"], stamp, body)}
            try:
                async with self.services.outbound.open("POST", row["url"], headers=headers, data=body,
                                                       timeout=self.timeout) as response:
                    status_code = response.status
                if not 200 <= status_code < 300:
                    error = f"The receiver answered HTTP {status_code}"
            except OutboundRefused as exc:
                error, permanent = exc.message, True
            except OutboundError as exc:
                error = exc.message
            except Exception as exc:  # noqa: BLE001 - recorded on the delivery, never raised into the loop
                error = f"The request failed ({type(exc).__name__})"
        latency = (time.perf_counter() - started) * 1000
        await self.record(row, attempt, status_code, error, permanent, latency)

    async def record(self, row: dict[str, Any], attempt: int, status_code: int | None, error: str | None,
                     permanent: bool, latency: float) -> None:
        """Queue the outcome of one attempt; :meth:`_record_batch` writes it."""
        t = now()
        if error is None:
            status, finished, due = "delivered", t, t
        elif permanent or attempt >= self.max_attempts:
            status, finished, due = "failed", t, t
        else:
            status, finished, due = "pending", None, t + dt.timedelta(seconds=backoff(self.base, attempt))
        if not self._results:
            self._results_since = time.monotonic()
        self._results.append({"_id": row["id"], "_attempt": attempt, "_by": self.instance, "_status": status,
                              "_finished": finished, "_due": due, "_code": status_code,
                              "_error": error and error[:1024], "_latency": round(latency, 2), "_at": t})
        if error is not None:
            log.info("webhook delivery %s attempt %d failed: %s", row["id"], attempt, error)

    async def _flush_results(self) -> None:
        """Write the outcomes queued so far, on their own (no claim is due)."""
        results, self._results = self._results, []
        if results:
            await self._record_batch(results)

    async def _record_batch(self, batch: list[dict[str, Any]]) -> None:
        try:
            async with self.db.transaction() as conn:
                await self._write_results(conn, batch)
        except Exception:  # e.g. a webhook deleted mid-send: write the others one by one
            for result in batch:
                try:
                    async with self.db.transaction() as conn:
                        await self._write_results(conn, [result])
                except Exception:  # its lease expires and it is sent again
                    log.exception("recording webhook delivery %s failed", result["_id"])
        if any(r["_status"] == "pending" for r in batch):
            self.wake()

    async def _write_results(self, conn: Any, batch: list[dict[str, Any]]) -> None:
        await conn.execute(self._write_outcome, batch)
        live = {r.id for r in await conn.execute(self._live, {"ids": sorted({r["_id"] for r in batch})})}
        rows = [{"delivery": r["_id"], "attempt": r["_attempt"], "status_code": r["_code"], "error": r["_error"],
                 "latency_ms": r["_latency"], "instance": r["_by"], "at": r["_at"]}
                for r in batch if r["_id"] in live]
        if rows:
            await conn.execute(self._add_attempts, rows)

    async def _prune(self) -> None:
        """Drop finished deliveries older than ``webhooks.log_retention_days``
        (at most once an hour)."""
        if self.retention <= 0 or time.monotonic() - self._pruned < 3600:
            return
        self._pruned = time.monotonic()
        cutoff = now() - dt.timedelta(days=self.retention)
        old = sa.select(deliveries.c.id).where(deliveries.c.status != "pending", deliveries.c.finished_at < cutoff)
        async with self.db.transaction() as conn:
            await conn.execute(attempts.delete().where(attempts.c.delivery.in_(old)))
            await conn.execute(deliveries.delete().where(deliveries.c.status != "pending",
                                                         deliveries.c.finished_at < cutoff))
