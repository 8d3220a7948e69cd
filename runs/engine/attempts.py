"""The attempts a worker is running: their processes, what they report, how they end.

Reading from attempt processes (`read`) only touches memory: messages go to `inbox`
and finished attempts to `outcomes`. `process_inbox` and `check` use the database
and raise on a database error with everything still in place, so the worker can
retry them; the worker writes `outcomes` together with its next claim.
"""

from __future__ import annotations

import contextlib
import logging
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass

from django.conf import settings
from django.db import DatabaseError, InterfaceError
from django.db.models import Q

from runs import packets, sdk
from runs.engine import requests
from runs.engine.claims import ClaimedRun
from runs.engine.lease import Lease
from runs.engine.outcomes import REQUEUE, Finished, Outcome
from runs.engine.pool import Executor, Pool
from runs.errors import RunError
from runs.lifecycle import transition
from runs.models import Packet, Run
from runs.statuses import FINISHED, HOLDING, RunStatus

logger = logging.getLogger("runwatch.worker")

REQUESTS = ("trigger", "batch", "wait")  # messages the attempt process waits on


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
        """The run as this attempt holds it: a guard for its transitions."""
        return Q(worker_id=self.worker_id, attempt_count=self.claim.attempt)


class Attempts:
    def __init__(
        self,
        worker_id: str,
        pool: Pool,
        lease: Lease,
        tasks: dict[str, sdk.Task],
        environments: dict[int, str],
        slot_freed: Callable[[], None],
    ) -> None:
        self.worker_id = worker_id
        self.pool = pool
        self.lease = lease
        self.tasks = tasks
        self.environments = environments
        self.slot_freed = slot_freed
        self.active: dict[Executor, Active] = {}
        self.inbox: deque[tuple[Active, tuple]] = deque()
        self.outcomes: list[Outcome] = []

    @property
    def busy(self) -> int:
        """Attempts using a slot (a parent waiting for a child does not)."""
        return sum(1 for a in self.active.values() if not a.waiting_for)

    def run_ids(self) -> list[int]:
        return [a.claim.pk for a in self.active.values()]

    # --- starting ------------------------------------------------------------------

    def start(self, claim: ClaimedRun) -> None:
        """Hand a claimed (EXECUTING) run to an attempt process."""
        executor = self.pool.take()
        now = time.monotonic()
        active = Active(
            claim=claim,
            executor=executor,
            started=now,
            deadline=now + claim.max_duration if claim.max_duration else None,
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

    # --- reading (memory only) -----------------------------------------------------------

    def read(self, executor: Executor) -> None:
        """Read what an attempt process sent: requests and flushes to the inbox, its
        result (or its death) to the outcomes."""
        active = self.active.get(executor)
        if active is None:
            return
        try:
            while executor.conn.poll():
                message = executor.conn.recv()
                kind = message[0]
                if kind in ("done", "failed"):
                    self._release(active)
                    self._result(active, kind, message[1])
                    return
                if kind == "flush":
                    message = self._cap_logs(active, message)
                self.inbox.append((active, message))
        except (EOFError, OSError):
            if self.active.pop(executor, None) is not None:
                self._track()
                self._died(active)

    def _result(self, active: Active, kind: str, value) -> None:
        if kind == "failed":
            task = self.tasks.get(active.claim.task)
            retry = task.retry if task else {}
            self._record(active, RunStatus.FAILED, error=value, retry_policy=retry)
            return
        limit = settings.RUNWATCH_OUTPUT_MAX_BYTES
        if value is not None and len(value.encode()) > limit:
            error = {
                "name": "OutputTooLarge",
                "message": f"Output exceeds maximum size of {limit} bytes",
                "stack": "",
            }
            self._record(active, RunStatus.FAILED, error=error, retry_policy={})
        else:
            self._record(active, RunStatus.COMPLETED, output=value)

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

    def _release(self, active: Active) -> None:
        """The attempt process finished its attempt: it can take the next one."""
        self.active.pop(active.executor, None)
        self._track()
        self.pool.give_back(active.executor)
        self.slot_freed()

    def _record(self, active: Active, status: str, **details) -> None:
        retry_policy = details.pop("retry_policy", None)
        reason = details.pop("reason", "")
        self.outcomes.append(
            Outcome(active.finished(**details), status, retry_policy, reason)
        )

    def _died(self, active: Active) -> None:
        code = active.executor.exit_code()
        active.executor.close()
        self.slot_freed()
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

    # --- the inbox (database) -----------------------------------------------------------

    def process_inbox(self) -> None:
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
        # If the process died, its EOF is handled by read().
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
            self.slot_freed()  # a slot is free while the parent waits

    # --- watching (database) ------------------------------------------------------------

    def check(self) -> None:
        """Stop attempts whose run was canceled or taken over, or that ran too long;
        resume parents whose child finished."""
        rows = {
            pk: rest
            for pk, *rest in Run.objects.filter(pk__in=self.run_ids()).values_list(
                "pk", "status", "worker_id", "attempt_count"
            )
        }
        now = time.monotonic()
        waiting: list[Active] = []
        for active in list(self.active.values()):
            status, holder, attempt = rows.get(active.claim.pk, (None, "", 0))
            ours = holder == self.worker_id and attempt == active.claim.attempt
            if not ours or status not in HOLDING:
                self.stop(active)
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
                self.stop(active)
                self._record(active, RunStatus.TIMED_OUT, error=_timed_out(active))
        if waiting:
            self._resume(waiting)

    def _resume(self, waiting: list[Active]) -> None:
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

    # --- stopping -----------------------------------------------------------------------

    def stop(self, active: Active) -> None:
        """Kill the attempt process (cancel, max duration, shutdown)."""
        self.active.pop(active.executor, None)
        self._track()
        active.executor.kill()
        self.slot_freed()

    def requeue_all(self, reason: str) -> None:
        """Stop every attempt; their runs go back to the queue (worker shutdown)."""
        for active in list(self.active.values()):
            self.stop(active)
            self._record(active, REQUEUE, reason=reason)


def _timed_out(active: Active) -> dict:
    seconds = active.claim.max_duration
    return {
        "name": "MaxDurationExceededError",
        "message": f"Run exceeded maximum compute time (maxDuration) of {seconds} seconds",
        "stack": "",
    }
