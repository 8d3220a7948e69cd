"""The worker: claims runs, hands each to an attempt process, writes what happens.

One thread drives everything with `multiprocessing.connection.wait` over the attempt
processes' pipes and the wake-ups, so there is no lock to reason about. Attempt
processes never touch the database: what they send (metadata, logs, child triggers,
results) is read into memory first (`inbox`, `outcomes`) and written afterwards,
batched. A database error leaves both in place to be written on the next pass, so
an outage delays writes but loses nothing; if it outlasts the lease (lease.py) the
running attempts are stopped and their runs recovered.
"""

from __future__ import annotations

import contextlib
import logging
import os
import secrets
import socket
import threading
import time
from collections import deque
from dataclasses import dataclass
from multiprocessing.connection import wait

from django.conf import settings
from django.db import DatabaseError, InterfaceError, connection, transaction
from django.db.models import Q

from realtime.publish import subscribe, unsubscribe
from runs import packets, sdk
from runs.deployments import register_tasks, task_set_hash
from runs.engine import outcomes, requests, retention, scheduler
from runs.engine.claims import (
    ClaimedRun,
    ClaimRules,
    anything_to_claim,
    claim_runs,
)
from runs.engine.lease import Lease
from runs.engine.outcomes import REQUEUE, Finished, Outcome
from runs.engine.pool import Executor, Pool
from runs.engine.registry import discover_tasks, task_modules
from runs.engine.wakeup import QueueListener, Wakeup, connect_listener
from runs.errors import RunError
from runs.lifecycle import transition
from runs.models import Environment, Packet, Run
from runs.statuses import FINISHED, HOLDING, RunStatus

logger = logging.getLogger("runwatch.worker")

CHECK_INTERVAL = 0.2  # cancel / max duration / child checks: a cancel lands in ~0.3 s
SCHEDULE_INTERVAL = 0.5
HOUSEKEEPING_INTERVAL = 60.0
ENVIRONMENT_REFRESH = 30.0
RULES_REFRESH = 1.0  # paused queues, concurrency limits, versions
REQUESTS = ("trigger", "batch", "wait")


@dataclass(eq=False)
class Active:
    """An attempt being executed (or waiting for a child run) by this worker."""

    claim: ClaimedRun
    executor: Executor
    started: float
    deadline: float | None
    worker_id: str
    waiting_for: str | None = None
    wait_started: float = 0.0
    log_lines: int = 0

    def finished(self, **outcome) -> Finished:
        elapsed = int((time.monotonic() - self.started) * 1000)
        return Finished(
            run_id=self.claim.pk,
            attempt_id=self.claim.attempt_id,
            attempt=self.claim.attempt,
            max_attempts=self.claim.max_attempts,
            duration_ms=self.claim.duration_ms + elapsed,
            worker_id=self.worker_id,
            priority_ms=self.claim.priority_ms,
            **outcome,
        )

    @property
    def held(self) -> Q:
        return Q(worker_id=self.worker_id, attempt_count=self.claim.attempt)


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
        self.active: dict[Executor, Active] = {}
        self.inbox: deque[tuple[Active, tuple]] = deque()
        self.outcomes: list[Outcome] = []
        self.wakeup = Wakeup()
        self.listener: QueueListener | None = None
        self.stopping = threading.Event()
        self.ready = threading.Event()
        self.draining = False
        self.drain_deadline = 0.0
        self.tasks: dict[str, sdk.Task] = {}
        self.task_hash = ""
        self.environments: dict[int, str] = {}
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
        self.tasks = discover_tasks(self.modules)
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
        for active in list(self.active.values()):
            self._stop(active)
            self._record(active, REQUEUE, reason="Worker shut down")
        self._write_pending(tries=3)
        self.pool.close()
        if self.listener:
            self.listener.close()
        self.wakeup.close()
        connection.close()

    def _should_exit(self) -> bool:
        return self.draining and (
            not self.active or time.monotonic() >= self.drain_deadline
        )

    def _write_pending(self, tries: int) -> None:
        for attempt in range(tries):
            try:
                self._process_inbox()
                self._write_outcomes()
                return
            except (DatabaseError, InterfaceError) as exc:
                connection.close()
                if attempt == tries - 1:
                    logger.error(
                        "worker %s exits with %d unwritten outcomes (%s); their runs "
                        "are recovered after the heartbeat timeout",
                        self.worker_id,
                        len(self.outcomes),
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
                len(self.inbox) + len(self.outcomes),
            )
        with contextlib.suppress(Exception):
            connection.close()
        if self.listener:
            self.listener.close()
            self.listener = None
        self._read_ready(timeout=0.5 if self.draining else 1.0)

    def step(self) -> None:
        self._read_ready(timeout=self._timeout())
        self._process_inbox()
        self._write_and_claim()
        self._periodic()

    def _read_ready(self, timeout: float) -> None:
        """Wait for messages or wake-ups and read them into memory (no database)."""
        by_conn = {executor.conn: executor for executor in self.active}
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
                self._read(by_conn[source])

    def _timeout(self) -> float:
        if self.inbox or self.outcomes:
            return 0
        if self._poked and self._free_slots() > 0 and not self.draining:
            return 0
        due = [self._due["poll"], self._due["schedule"], self._due["rules"]]
        due.append(self.lease.renewed_at + self.lease.interval)
        if self.active:
            due.append(self._due["check"])
        if self.draining:
            due.append(self.drain_deadline)
        return max(0.0, min(due) - time.monotonic())

    def _periodic(self) -> None:
        now = time.monotonic()
        if self.active and now >= self._due["check"]:
            self._check_active()
            self._due["check"] = now + CHECK_INTERVAL
        if now >= self.lease.renewed_at + self.lease.interval:
            self.lease.renew(a.claim.pk for a in self.active.values())
        if now >= self._due["schedule"]:
            if self.run_scheduler and scheduler.tick():
                self._poked = True
            self._due["schedule"] = now + SCHEDULE_INTERVAL
        if self.run_scheduler and now >= self._due["housekeeping"]:
            retention.prune_metadata_events()
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
        return self.concurrency - sum(
            1 for a in self.active.values() if not a.waiting_for
        )

    # --- claiming and dispatch ---------------------------------------------------------

    def _write_and_claim(self) -> None:
        """Write finished attempts and claim runs for the free slots in one
        transaction (one commit per pass of the loop), then start the claimed runs."""
        pending = list(self.outcomes)
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
        del self.outcomes[: len(pending)]
        self._claimed_full = bool(want) and len(claimed) == want
        if self._claimed_full:
            self._poked = True  # there may be more: claim again as soon as a slot frees
        if claimed:
            self.lease.claimed(at)
        for claim in claimed:
            self._dispatch(claim)

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

    def _dispatch(self, claim: ClaimedRun) -> None:
        executor = self.pool.take()
        max_duration = claim.max_duration
        now = time.monotonic()
        active = Active(
            claim=claim,
            executor=executor,
            started=now,
            deadline=now + max_duration if max_duration else None,
            worker_id=self.worker_id,
        )
        self.active[executor] = active
        self._track()
        self._send(active, ("run", self._attempt_info(claim)))

    def _attempt_info(self, claim: ClaimedRun) -> dict:
        return {
            "run_id": claim.friendly_id,
            "task": claim.task,
            "payload": self._payload(claim),
            "metadata": claim.metadata or {},
            "tags": claim.tags,
            "is_test": claim.is_test,
            "created_at": claim.created_at.isoformat(),
            "attempt": claim.attempt,
            "environment": self.environments.get(claim.environment_id, ""),
            "version": claim.version,
            "queue": claim.queue,
            "machine": claim.machine,
        }

    def _payload(self, claim: ClaimedRun):
        if claim.payload_type != packets.STORE:
            return packets.decode_packet(claim.payload, claim.payload_type)
        packet = Packet.objects.filter(
            environment_id=claim.environment_id, path=claim.payload
        ).first()
        if packet is None or packet.data is None:
            return None
        return packets.decode_packet(bytes(packet.data).decode(), packet.content_type)

    def _track(self) -> None:
        """Tell the lease guard which processes hold runs."""
        self.lease.holding(a.executor.pid for a in self.active.values())

    # --- messages from attempt processes -----------------------------------------------

    def _read(self, executor: Executor) -> None:
        active = self.active.get(executor)
        if active is None:
            return
        try:
            while executor.conn.poll():
                message = executor.conn.recv()
                kind = message[0]
                if kind == "done":
                    self._release(active)
                    self._completed(active, message[1])
                    return
                if kind == "failed":
                    self._release(active)
                    task = self.tasks.get(active.claim.task)
                    self._record(
                        active,
                        RunStatus.FAILED,
                        error=message[1],
                        retry_policy=task.retry if task else {},
                    )
                    return
                if kind == "flush":
                    message = self._cap_logs(active, message)
                self.inbox.append((active, message))
        except (EOFError, OSError):
            if self.active.pop(executor, None) is not None:
                self._track()
                self._process_died(active)

    def _completed(self, active: Active, output: str | None) -> None:
        limit = settings.RUNWATCH_OUTPUT_MAX_BYTES
        if output is not None and len(output.encode()) > limit:
            error = {
                "name": "OutputTooLarge",
                "message": f"Output exceeds maximum size of {limit} bytes",
                "stack": "",
            }
            self._record(active, RunStatus.FAILED, error=error, retry_policy={})
        else:
            self._record(active, RunStatus.COMPLETED, output=output)

    def _cap_logs(self, active: Active, message: tuple) -> tuple:
        kind, ops, logs = message
        limit = settings.RUNWATCH_MAX_LOG_LINES_PER_ATTEMPT
        room = max(0, limit - active.log_lines)
        active.log_lines += len(logs)
        if len(logs) <= room:
            return message
        kept = logs[:room]
        if active.log_lines - len(logs) <= limit:  # tell once
            kept.append(
                {
                    "level": "warn",
                    "message": f"Log limit of {limit} lines per attempt reached; "
                    "further lines are dropped",
                    "attributes": {},
                }
            )
        return (kind, ops, kept)

    def _process_inbox(self) -> None:
        """Write metadata and logs, answer child triggers and waits, in order. A
        database error stops here and keeps the rest for the next pass."""
        while self.inbox:
            active, message = self.inbox[0]
            try:
                self._handle(active, message)
            except (DatabaseError, InterfaceError):
                raise
            except Exception:
                logger.exception(
                    "could not handle %r from run %s", message[0], active.claim.pk
                )
                if message[0] in REQUESTS:
                    self._send(
                        active, ("error", "Runwatch could not handle the request")
                    )
            self.inbox.popleft()

    def _handle(self, active: Active, message: tuple) -> None:
        kind = message[0]
        if kind == "flush":
            requests.write_flush(
                active.claim.pk, active.claim.environment_id, message[1], message[2]
            )
        elif kind in ("trigger", "batch"):
            self._answer(active, lambda: self._trigger(active, message))
        elif kind == "wait":
            self._wait(active, message[1])

    def _trigger(self, active: Active, message: tuple):
        parent = requests.parent_run(active.claim.pk)
        if message[0] == "trigger":
            _, task_id, payload, options, wait_for_it = message
            return requests.trigger_child(
                parent, task_id, payload, options, wait_for_it
            )
        return requests.trigger_children(parent, message[1])

    def _answer(self, active: Active, compute) -> None:
        try:
            reply = ("ok", compute())
        except (RunError, TypeError, ValueError) as exc:
            reply = ("error", str(exc))
        self._send(active, reply)

    def _send(self, active: Active, reply: tuple) -> None:
        # If the process died, its EOF is handled by _read.
        with contextlib.suppress(OSError, ValueError):
            active.executor.conn.send(reply)

    def _wait(self, active: Active, child_id: str) -> None:
        done = requests.child_results(active.claim.environment_id, [child_id])
        if child_id in done:
            self._send(active, ("ok", done[child_id]))
            return
        if transition(
            active.claim.pk,
            RunStatus.WAITING,
            allowed_from=[RunStatus.EXECUTING],
            where=active.held,
            message=f"Waiting for {child_id}",
        ):
            active.waiting_for = child_id
            active.wait_started = time.monotonic()
            self._poked = True  # a slot is free while the parent waits

    def _release(self, active: Active) -> None:
        """The attempt process finished its attempt: it can take the next one."""
        self.active.pop(active.executor, None)
        self._track()
        self.pool.give_back(active.executor)
        self._poked = True

    def _record(self, active: Active, status: str, **details) -> None:
        retry_policy = details.pop("retry_policy", None)
        reason = details.pop("reason", "")
        self.outcomes.append(
            Outcome(active.finished(**details), status, retry_policy, reason)
        )

    def _write_outcomes(self) -> None:
        pending = list(self.outcomes)
        outcomes.write(pending)
        del self.outcomes[: len(pending)]

    # --- watching active attempts -------------------------------------------------------

    def _check_active(self) -> None:
        """Stop attempts whose run was canceled or taken over, or that ran too long."""
        rows = {
            pk: rest
            for pk, *rest in Run.objects.filter(
                pk__in=[a.claim.pk for a in self.active.values()]
            ).values_list("pk", "status", "worker_id", "attempt_count")
        }
        now = time.monotonic()
        waiting: list[Active] = []
        for active in list(self.active.values()):
            status, holder, attempt = rows.get(active.claim.pk, (None, "", 0))
            ours = holder == self.worker_id and attempt == active.claim.attempt
            if not ours or status not in HOLDING:
                self._stop(active)
                if ours and status in FINISHED:
                    self._record(active, RunStatus.CANCELED)
                elif not ours:
                    logger.warning(
                        "run %s was taken over (now %s by %r): attempt stopped",
                        active.claim.friendly_id,
                        status,
                        holder,
                    )
            elif active.waiting_for:
                waiting.append(active)
            elif active.deadline and now >= active.deadline:
                self._stop(active)
                self._record(active, RunStatus.TIMED_OUT, error=self._timed_out(active))
        if waiting:
            self._resume_waiting(waiting)

    def _timed_out(self, active: Active) -> dict:
        seconds = active.claim.max_duration
        return {
            "name": "MaxDurationExceededError",
            "message": f"Run exceeded maximum compute time (maxDuration) of {seconds} seconds",
            "stack": "",
        }

    def _resume_waiting(self, waiting: list[Active]) -> None:
        by_env: dict[int, list[Active]] = {}
        for active in waiting:
            by_env.setdefault(active.claim.environment_id, []).append(active)
        for env_id, group in by_env.items():
            done = requests.child_results(env_id, [a.waiting_for for a in group])
            for active in group:
                if active.waiting_for not in done:
                    continue
                if not transition(
                    active.claim.pk,
                    RunStatus.EXECUTING,
                    allowed_from=[RunStatus.WAITING],
                    where=active.held,
                    message=f"Resumed: {active.waiting_for} finished",
                ):
                    continue
                paused = time.monotonic() - active.wait_started
                active.started += paused  # waiting is not compute time
                if active.deadline:
                    active.deadline += paused
                result = done[active.waiting_for]
                active.waiting_for = None
                self._send(active, ("ok", result))

    def _stop(self, active: Active) -> None:
        """Kill the attempt process (cancel, max duration, shutdown)."""
        self.active.pop(active.executor, None)
        self._track()
        active.executor.kill()
        self._poked = True

    def _process_died(self, active: Active) -> None:
        code = active.executor.exit_code()
        active.executor.close()
        self._poked = True
        if active.executor.pid in self.lease.fenced:
            self._record(active, REQUEUE, reason="Worker lost its lease, retrying")
            return
        reason = (
            f"killed by signal {-code}"
            if code is not None and code < 0
            else f"exited with code {code}"
        )
        error = {
            "name": "TaskProcessExited",
            "message": f"The task process {reason}",
            "stack": "",
        }
        self._record(active, RunStatus.CRASHED, error=error)
