"""The worker: claims runs, hands each to an attempt process, writes what happens.

One thread drives everything with `multiprocessing.connection.wait` over the attempt
processes' pipes and the wake-ups, so there is no lock to reason about. Attempt
processes never touch the database: what they send (metadata, logs, child triggers,
results) is read into memory first (attempts.py) and written afterwards, batched:
finished attempts in the same transaction as the next claim. A database error leaves
everything in place to be written on the next pass, so an outage delays writes but
loses nothing; if it outlasts the lease (lease.py) the running attempts are stopped
and their runs recovered.
"""

from __future__ import annotations

import contextlib
import logging
import os
import secrets
import socket
import threading
import time
from multiprocessing.connection import wait

from django.conf import settings
from django.db import DatabaseError, InterfaceError, connection, transaction

from realtime.publish import subscribe, unsubscribe
from realtime.retention import prune_live_signals
from runs import sdk
from runs.deployments import register_tasks, task_set_hash
from runs.engine import outcomes, retention, scheduler
from runs.engine.attempts import Attempts
from runs.engine.claims import (
    ClaimRules,
    anything_to_claim,
    claim_runs,
)
from runs.engine.lease import Lease
from runs.engine.pool import Pool
from runs.engine.registry import discover_tasks, task_modules
from runs.engine.wakeup import QueueListener, Wakeup, connect_listener
from runs.models import Environment

logger = logging.getLogger("runwatch.worker")

CHECK_INTERVAL = 0.2  # cancel / max duration / child checks: a cancel lands in ~0.3 s
SCHEDULE_INTERVAL = 0.5
HOUSEKEEPING_INTERVAL = 60.0
ENVIRONMENT_REFRESH = 30.0
RULES_REFRESH = 1.0  # paused queues, concurrency limits, versions
GATHER_WINDOW = 0.002  # seconds to wait for more finished attempts before writing


class Worker:
    def __init__(
        self,
        *,
        concurrency: int = 4,
        environments: list[str] | None = None,
        modules: list[str] | None = None,
        run_scheduler: bool = True,
        worker_id: str | None = None,
        shutdown_grace: float = 0.0,
    ) -> None:
        self.concurrency = concurrency
        self.environment_slugs = environments
        self.modules = task_modules(modules)
        self.run_scheduler = run_scheduler
        self.shutdown_grace = shutdown_grace
        self.worker_id = (
            worker_id or f"{socket.gethostname()}-{os.getpid()}-{secrets.token_hex(2)}"
        )
        self.pool = Pool(self.modules)
        self.lease = Lease(self.worker_id)
        self.tasks: dict[str, sdk.Task] = {}
        self.environments: dict[int, str] = {}
        self.attempts = Attempts(
            self.worker_id,
            self.pool,
            self.lease,
            self.tasks,
            self.environments,
            slot_freed=self._poke,
        )
        self.wakeup = Wakeup()
        self.listener: QueueListener | None = None
        self.stopping = threading.Event()
        self.ready = threading.Event()
        self.draining = False
        self.drain_deadline = 0.0
        self.task_hash = ""
        self.rules = ClaimRules([], {}, {})
        self._due = dict.fromkeys(
            ("check", "schedule", "housekeeping", "poll", "envs", "listen", "rules"),
            0.0,
        )
        self._poked = True
        self._claimed_full = False
        self._thread_id = 0
        self._db_down_since: float | None = None

    # --- lifecycle -----------------------------------------------------------------

    def run(self) -> None:
        """Run until `stop()` is called (from another thread or a signal handler)."""
        self._thread_id = threading.get_ident()
        self.setup()
        try:
            while not self._should_exit():
                self._guarded_step()
        finally:
            self.shutdown()

    def stop(self, grace: float | None = None) -> None:
        """Stop claiming; give running attempts `grace` seconds (default: the
        worker's shutdown_grace) to finish, then requeue the rest. A second call
        stops at once."""
        now = time.monotonic()
        if self.draining:
            self.drain_deadline = now
        else:
            self.draining = True
            self.drain_deadline = now + (
                self.shutdown_grace if grace is None else grace
            )
        self.stopping.set()
        self.wakeup.set()

    def setup(self) -> None:
        self.tasks.update(discover_tasks(self.modules))
        self.task_hash = task_set_hash([t.spec for t in self.tasks.values()])
        self._refresh_environments()
        self.rules = ClaimRules.load(list(self.environments), self.task_hash)
        self.pool.prefill(min(self.concurrency, 2))
        subscribe(self._on_local_change)
        self.lease.start_guard(self.wakeup.set)
        logger.info(
            "worker %s: %d tasks, %d environments, concurrency %d",
            self.worker_id,
            len(self.tasks),
            len(self.environments),
            self.concurrency,
        )
        self.ready.set()

    def shutdown(self) -> None:
        """Requeue what is still running, write what is pending, release everything."""
        self.lease.stop_guard()
        unsubscribe(self._on_local_change)
        self.attempts.requeue_all("Worker shut down")
        self._write_pending(tries=3)
        self.pool.close()
        if self.listener:
            self.listener.close()
        self.wakeup.close()
        connection.close()

    def _should_exit(self) -> bool:
        return self.draining and (
            not self.attempts.active or time.monotonic() >= self.drain_deadline
        )

    def _write_pending(self, tries: int) -> None:
        for attempt in range(tries):
            try:
                self.attempts.process_inbox()
                outcomes.write(self.attempts.outcomes)
                self.attempts.outcomes.clear()
                return
            except (DatabaseError, InterfaceError) as exc:
                connection.close()
                if attempt == tries - 1:
                    logger.error(
                        "worker %s exits with %d unwritten outcomes (%s); their runs "
                        "are recovered after the heartbeat timeout",
                        self.worker_id,
                        len(self.attempts.outcomes),
                        exc,
                    )
                else:
                    time.sleep(1)

    def _refresh_environments(self) -> None:
        envs = Environment.objects.all()
        if self.environment_slugs:
            envs = envs.filter(slug__in=self.environment_slugs)
        specs = [t.spec for t in self.tasks.values()]
        for env in envs:
            if env.pk not in self.environments and specs:
                register_tasks(env, specs)
            self.environments[env.pk] = env.slug

    def _on_local_change(self, event) -> None:
        # A run changed by another thread of this process (serve's web server, a
        # demo feed) may be claimable now; the worker's own changes are not news.
        if event["kind"] == "status" and threading.get_ident() != self._thread_id:
            self.wakeup.set()

    # --- the loop --------------------------------------------------------------------

    def _guarded_step(self) -> None:
        try:
            self.step()
        except (DatabaseError, InterfaceError) as exc:
            self._database_failed(exc)
        except Exception:  # a bug must not take the worker (and its runs) down
            logger.exception("unexpected error in worker loop")
            time.sleep(0.5)
        else:
            if self._db_down_since is not None:
                logger.warning(
                    "worker %s: database is back after %.1fs",
                    self.worker_id,
                    time.monotonic() - self._db_down_since,
                )
                self._db_down_since = None

    def _database_failed(self, exc: Exception) -> None:
        if self._db_down_since is None:
            self._db_down_since = time.monotonic()
            logger.error(
                "worker %s: database error (%s); %d writes kept, retrying every second",
                self.worker_id,
                exc,
                len(self.attempts.inbox) + len(self.attempts.outcomes),
            )
        with contextlib.suppress(Exception):
            connection.close()
        if self.listener:
            self.listener.close()
            self.listener = None
        self._read_ready(timeout=0.5 if self.draining else 1.0)

    def step(self) -> None:
        self._read_ready(timeout=self._timeout())
        self.attempts.process_inbox()
        self._write_and_claim()
        self._periodic()

    def _read_ready(self, timeout: float) -> None:
        """Wait for messages or wake-ups and read them into memory (no database).
        When an attempt finishes while others are still running, wait up to
        GATHER_WINDOW for more to finish: one commit then covers them all."""
        finished = len(self.attempts.outcomes)
        self._read_sources(timeout)
        if len(self.attempts.outcomes) > finished and self.attempts.busy:
            deadline = time.monotonic() + GATHER_WINDOW
            while self.attempts.busy and (left := deadline - time.monotonic()) > 0:
                self._read_sources(left)

    def _read_sources(self, timeout: float) -> None:
        by_conn = {executor.conn: executor for executor in self.attempts.active}
        sources = [*by_conn, self.wakeup]
        if self.listener:
            sources.append(self.listener)
        for source in wait(sources, timeout=timeout):
            if source is self.wakeup:
                self.wakeup.drain()
                self._poked = True
            elif source is self.listener:
                try:
                    self.listener.drain()
                except Exception:  # the LISTEN connection died: reconnect later
                    self.listener.close()
                    self.listener = None
                self._poked = True
            else:
                self.attempts.read(by_conn[source])

    def _timeout(self) -> float:
        if self.attempts.inbox or self.attempts.outcomes:
            return 0
        if self._poked and self._free_slots() > 0 and not self.draining:
            return 0
        due = [self._due["poll"], self._due["schedule"], self._due["rules"]]
        due.append(self.lease.renewed_at + self.lease.interval)
        if self.attempts.active:
            due.append(self._due["check"])
        if self.draining:
            due.append(self.drain_deadline)
        return max(0.0, min(due) - time.monotonic())

    def _periodic(self) -> None:
        now = time.monotonic()
        if self.attempts.active and now >= self._due["check"]:
            self.attempts.check()
            self._due["check"] = now + CHECK_INTERVAL
        if now >= self.lease.renewed_at + self.lease.interval:
            self.lease.renew(self.attempts.run_ids())
        if now >= self._due["schedule"]:
            if self.run_scheduler and scheduler.tick():
                self._poked = True
            self._due["schedule"] = now + SCHEDULE_INTERVAL
        if self.run_scheduler and now >= self._due["housekeeping"]:
            retention.prune_metadata_events()
            prune_live_signals()
            self._due["housekeeping"] = now + HOUSEKEEPING_INTERVAL
        if now >= self._due["rules"]:
            self.rules = ClaimRules.load(list(self.environments), self.task_hash)
            self._due["rules"] = now + RULES_REFRESH
        if now >= self._due["envs"]:
            self._refresh_environments()
            self._due["envs"] = now + ENVIRONMENT_REFRESH
        if (
            self.listener is None
            and settings.IS_POSTGRES
            and now >= self._due["listen"]
        ):
            self.listener = connect_listener()
            self._due["listen"] = now + 5
            self._poked = True  # runs may have been queued while we were not listening

    def _poll_interval(self) -> float:
        return 2.0 if self.listener else 0.1

    def _free_slots(self) -> int:
        return self.concurrency - self.attempts.busy

    def _poke(self) -> None:
        self._poked = True

    @property
    def active(self) -> dict:
        """The running attempts by attempt process (tests look at it)."""
        return self.attempts.active

    # --- claiming and dispatch ---------------------------------------------------------

    def _write_and_claim(self) -> None:
        """Write finished attempts and claim runs for the free slots in one
        transaction (one commit per pass of the loop), then start the claimed runs."""
        pending = list(self.attempts.outcomes)
        want = self._slots_to_fill()
        if not pending and not want:
            return
        at = time.monotonic()
        with transaction.atomic():
            outcomes.write(pending)
            claimed = claim_runs(
                self.worker_id,
                list(self.environments),
                list(self.tasks),
                want,
                self.rules,
            )
        del self.attempts.outcomes[: len(pending)]
        self._claimed_full = bool(want) and len(claimed) == want
        if self._claimed_full:
            self._poked = True  # there may be more: claim again as soon as a slot frees
        if claimed:
            self.lease.claimed(at)
        for claim in claimed:
            self.attempts.start(claim)

    def _slots_to_fill(self) -> int:
        """How many runs to claim now: the free slots, when poked (a run was queued,
        a slot freed) or the poll is due, and there is something to claim (on SQLite
        a lock-free look first, so an idle worker takes no write lock)."""
        now = time.monotonic()
        free = self._free_slots()
        if self.draining or free <= 0 or not (self._poked or now >= self._due["poll"]):
            return 0
        self._poked = False
        self._due["poll"] = now + self._poll_interval()
        # On PostgreSQL an empty claim costs about what the look would: just claim.
        if (
            settings.IS_POSTGRES
            or self._claimed_full
            or anything_to_claim(list(self.environments), list(self.tasks), self.rules)
        ):
            return free
        return 0
