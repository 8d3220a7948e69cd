"""The worker: claims runs, hands each to an attempt process, writes what happens.

One thread drives everything with `multiprocessing.connection.wait` over the attempt
processes' pipes and the wake-ups, so there is no lock to reason about. Database
writes from attempts (metadata, logs, outcomes) go through this thread, batched:
attempt processes never connect to the database.
"""

from __future__ import annotations

import contextlib
import logging
import os
import secrets
import socket
import threading
import time
from dataclasses import dataclass
from multiprocessing.connection import wait

from django.conf import settings
from django.db import DatabaseError, InterfaceError, connection
from django.utils import timezone

from realtime.publish import subscribe, unsubscribe
from runs import packets, sdk
from runs.deployments import register_tasks
from runs.engine import outcomes, requests, scheduler
from runs.engine.claims import ClaimedRun, ClaimRules, claim_runs
from runs.engine.pool import Executor, Pool
from runs.engine.registry import discover_tasks, task_modules
from runs.engine.wakeup import QueueListener, Wakeup, connect_listener
from runs.errors import RunError
from runs.lifecycle import transition, transition_many
from runs.models import Environment, Packet, Run
from runs.statuses import RunStatus

logger = logging.getLogger("runwatch.worker")

CHECK_INTERVAL = (
    0.2  # cancel / max duration / child checks: a cancel lands within ~0.3 s
)
HEARTBEAT_INTERVAL = 5.0
SCHEDULE_INTERVAL = 0.5
ENVIRONMENT_REFRESH = 30.0
RULES_REFRESH = 1.0  # paused queues, concurrency limits, current versions
HOLDING = (RunStatus.DEQUEUED, RunStatus.EXECUTING, RunStatus.WAITING)


@dataclass
class Active:
    claim: ClaimedRun
    executor: Executor
    started: float
    deadline: float | None
    waiting_for: str | None = None
    wait_started: float = 0.0

    def finished(self, **outcome) -> outcomes.Finished:
        elapsed = int((time.monotonic() - self.started) * 1000)
        return outcomes.Finished(
            run_id=self.claim.pk,
            attempt_id=self.claim.attempt_id,
            attempt=self.claim.attempt,
            max_attempts=self.claim.max_attempts,
            duration_ms=self.claim.duration_ms + elapsed,
            **outcome,
        )


class Worker:
    def __init__(
        self,
        *,
        concurrency: int = 4,
        environments: list[str] | None = None,
        modules: list[str] | None = None,
        run_scheduler: bool = True,
        worker_id: str | None = None,
    ) -> None:
        self.concurrency = concurrency
        self.environment_slugs = environments
        self.modules = task_modules(modules)
        self.run_scheduler = run_scheduler
        self.worker_id = (
            worker_id or f"{socket.gethostname()}-{os.getpid()}-{secrets.token_hex(2)}"
        )
        self.pool = Pool(self.modules)
        self.active: dict[Executor, Active] = {}
        self.completed: list[outcomes.Finished] = []
        self.wakeup = Wakeup()
        self.listener: QueueListener | None = None
        self.stopping = threading.Event()
        self.ready = threading.Event()
        self.tasks: dict[str, sdk.Task] = {}
        self.environments: dict[int, str] = {}
        self._due = {
            "check": 0.0,
            "heartbeat": 0.0,
            "schedule": 0.0,
            "poll": 0.0,
            "envs": 0.0,
            "listen": 0.0,
            "rules": 0.0,
        }
        self._poked = True
        self.rules: ClaimRules | None = None
        self.batches_touched: set[int] = set()

    # --- lifecycle -----------------------------------------------------------------

    def run(self) -> None:
        """Run until `stop()` is called (from another thread or a signal handler)."""
        self.setup()
        try:
            while not self.stopping.is_set():
                self._guarded_step()
        finally:
            self.shutdown()

    def stop(self) -> None:
        self.stopping.set()
        self.wakeup.set()

    def setup(self) -> None:
        self.tasks = discover_tasks(self.modules)
        self._refresh_environments()
        self.pool.prefill(min(self.concurrency, 2))
        subscribe(self._on_local_change)
        logger.info(
            "worker %s: %d tasks, %d environments, concurrency %d",
            self.worker_id,
            len(self.tasks),
            len(self.environments),
            self.concurrency,
        )
        self.ready.set()

    def shutdown(self) -> None:
        unsubscribe(self._on_local_change)
        try:
            self._write_completions()
            self._requeue_active("Worker shut down")
        except DatabaseError:
            logger.exception("could not release runs on shutdown")
        self.pool.close()
        if self.listener:
            self.listener.close()
        self.wakeup.close()
        connection.close()

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
        if event["kind"] == "status":
            self.wakeup.set()

    # --- the loop --------------------------------------------------------------------

    def _guarded_step(self) -> None:
        try:
            self.step()
        except (DatabaseError, InterfaceError):
            logger.exception("database error in worker loop; retrying in 1 s")
            connection.close()
            if self.listener:
                self.listener.close()
                self.listener = None
            time.sleep(1)
        except Exception:  # a bug must not take the worker (and its runs) down
            logger.exception("unexpected error in worker loop")
            time.sleep(0.5)

    def step(self) -> None:
        by_conn = {executor.conn: executor for executor in self.active}
        sources = [*by_conn, self.wakeup]
        if self.listener:
            sources.append(self.listener)
        for source in wait(sources, timeout=self._timeout()):
            if source is self.wakeup:
                self.wakeup.drain()
                self._poked = True
            elif source is self.listener:
                self.listener.drain()
                self._poked = True
            else:
                self._receive(by_conn[source])
        self._write_completions()
        self._periodic()
        self._claim()

    def _timeout(self) -> float:
        if self._poked and self._free_slots() > 0:
            return 0
        now = time.monotonic()
        due = [self._due["poll"], self._due["heartbeat"]]
        if self.active:
            due.append(self._due["check"])
        due.append(self._due["schedule"])
        return max(0.0, min(due) - now)

    def _periodic(self) -> None:
        now = time.monotonic()
        if self.active and now >= self._due["check"]:
            self._check_active()
            self._due["check"] = now + CHECK_INTERVAL
        if now >= self._due["heartbeat"]:
            self._heartbeat()
            self._due["heartbeat"] = now + HEARTBEAT_INTERVAL
        if now >= self._due["schedule"]:
            if self.run_scheduler and scheduler.tick():
                self._poked = True
            outcomes.settle_batches(self.batches_touched)
            self.batches_touched = set()
            self._due["schedule"] = now + SCHEDULE_INTERVAL
        if now >= self._due["rules"]:
            self.rules = ClaimRules.load(list(self.environments))
            self._due["rules"] = now + RULES_REFRESH
        if now >= self._due["envs"]:
            if self._due["envs"]:
                self._refresh_environments()
            self._due["envs"] = now + ENVIRONMENT_REFRESH
        if (
            self.listener is None
            and settings.IS_POSTGRES
            and now >= self._due["listen"]
        ):
            self.listener = connect_listener()
            self._due["listen"] = now + 5

    def _poll_interval(self) -> float:
        return 2.0 if self.listener else 0.1

    def _free_slots(self) -> int:
        return self.concurrency - sum(
            1 for a in self.active.values() if not a.waiting_for
        )

    # --- claiming and dispatch ---------------------------------------------------------

    def _claim(self) -> None:
        now = time.monotonic()
        free = self._free_slots()
        if free <= 0 or not (self._poked or now >= self._due["poll"]):
            return
        self._poked = False
        self._due["poll"] = now + self._poll_interval()
        claimed = claim_runs(
            self.worker_id, list(self.environments), list(self.tasks), free, self.rules
        )
        if not claimed:
            return
        if len(claimed) == free:
            self._poked = True  # there may be more: claim again as soon as a slot frees
        started = set(
            transition_many(
                [c.pk for c in claimed],
                RunStatus.EXECUTING,
                allowed_from=[RunStatus.DEQUEUED],
                message="Attempt started",
                heartbeat_at=timezone.now(),
            )
        )
        for claim in claimed:
            if claim.pk in started:
                self._dispatch(claim)
            else:
                outcomes.close_canceled(
                    outcomes.Finished(
                        claim.pk,
                        claim.attempt_id,
                        claim.attempt,
                        claim.max_attempts,
                        claim.duration_ms,
                    )
                )

    def _dispatch(self, claim: ClaimedRun) -> None:
        executor = self.pool.take()
        max_duration = claim.max_duration or self.tasks[claim.task].max_duration
        now = time.monotonic()
        self.active[executor] = Active(
            claim=claim,
            executor=executor,
            started=now,
            deadline=now + max_duration if max_duration else None,
        )
        executor.conn.send(("run", self._attempt_info(claim)))

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

    # --- messages from attempt processes -----------------------------------------------

    def _receive(self, executor: Executor) -> None:
        active = self.active.get(executor)
        try:
            while executor.conn.poll():
                message = executor.conn.recv()
                if active is None:
                    continue
                self._handle(active, message)
                if message[0] in ("done", "failed"):
                    return
        except (EOFError, OSError):
            if active is not None and self.active.pop(executor, None) is not None:
                self._crashed(active)

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
        elif kind == "done":
            self._release(active)
            self.completed.append(active.finished(output=message[1]))
        elif kind == "failed":
            self._release(active)
            result = active.finished(error=message[1])
            task = self.tasks.get(active.claim.task)
            outcomes.fail(result, task.retry if task else {})
            self._poked = True

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
        # If the process died, its EOF is handled by _receive.
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
            message=f"Waiting for {child_id}",
        ):
            active.waiting_for = child_id
            active.wait_started = time.monotonic()
            self._poked = True  # a slot is free while the parent waits

    def _ended(self, active: Active) -> None:
        if active.claim.batch_id:
            self.batches_touched.add(active.claim.batch_id)
        self._poked = True

    def _release(self, active: Active) -> None:
        self._ended(active)
        self.active.pop(active.executor, None)
        self.pool.give_back(active.executor)
        self._poked = True

    def _write_completions(self) -> None:
        if self.completed:
            done, self.completed = self.completed, []
            outcomes.complete(done)

    # --- watching active attempts -------------------------------------------------------

    def _check_active(self) -> None:
        statuses = dict(
            Run.objects.filter(
                pk__in=[a.claim.pk for a in self.active.values()]
            ).values_list("pk", "status")
        )
        now = time.monotonic()
        waiting: list[Active] = []
        for active in list(self.active.values()):
            status = statuses.get(active.claim.pk)
            if status not in HOLDING:
                self._stop(active)
                outcomes.close_canceled(active.finished())
            elif active.waiting_for:
                waiting.append(active)
            elif active.deadline and now >= active.deadline:
                self._stop(active)
                seconds = (
                    active.claim.max_duration
                    or self.tasks[active.claim.task].max_duration
                )
                outcomes.end_abnormally(
                    active.finished(),
                    RunStatus.TIMED_OUT,
                    {
                        "name": "MaxDurationExceededError",
                        "message": f"Run exceeded maximum compute time (maxDuration) of {seconds} seconds",
                        "stack": "",
                    },
                )
        if waiting:
            self._resume_waiting(waiting)

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
        self._ended(active)
        self.active.pop(active.executor, None)
        active.executor.kill()
        self._poked = True

    def _crashed(self, active: Active) -> None:
        self._ended(active)
        code = active.executor.exit_code()
        active.executor.conn.close()
        reason = (
            f"killed by signal {-code}"
            if code is not None and code < 0
            else f"exited with code {code}"
        )
        outcomes.end_abnormally(
            active.finished(),
            RunStatus.CRASHED,
            {
                "name": "TaskProcessExited",
                "message": f"The task process {reason}",
                "stack": "",
            },
        )
        self._poked = True

    def _heartbeat(self) -> None:
        ids = [a.claim.pk for a in self.active.values()]
        if ids:
            Run.objects.filter(pk__in=ids, worker_id=self.worker_id).update(
                heartbeat_at=timezone.now()
            )

    def _requeue_active(self, reason: str) -> None:
        for active in list(self.active.values()):
            self._stop(active)
            outcomes.close_canceled(active.finished())
            transition(
                active.claim.pk,
                RunStatus.QUEUED,
                allowed_from=HOLDING,
                message=reason,
                queued_at=timezone.now(),
                queue_timestamp=timezone.now(),
                worker_id="",
            )
