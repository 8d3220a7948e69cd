"""A worker's lease on the runs it holds.

The worker renews `heartbeat_at` of its runs every `interval` seconds. Any worker's
scheduler treats a run whose heartbeat is older than RUNWATCH_HEARTBEAT_TIMEOUT_SECONDS
as lost and queues it again, so the holder must have stopped executing it by then:
when the worker has not renewed for `fence_after` seconds (its database is gone, or
it is stuck), a guard thread that needs no database SIGKILLs its attempt processes.
That is what makes "a run never executes twice at once" hold through outages.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Iterable

from django.conf import settings
from django.utils import timezone

from runs.engine.pool import kill_group
from runs.models import Run

logger = logging.getLogger("runwatch.worker")


class Lease:
    def __init__(self, worker_id: str, timeout: float | None = None) -> None:
        self.worker_id = worker_id
        self.timeout = timeout or settings.RUNWATCH_HEARTBEAT_TIMEOUT_SECONDS
        self.interval = min(5.0, self.timeout / 6)
        self.fence_after = self.timeout * 0.6
        self.renewed_at = time.monotonic()
        self.fenced: set[int] = set()  # pids the guard killed
        self._pids: tuple[int, ...] = ()
        self._stop = threading.Event()
        self._guard: threading.Thread | None = None

    def renew(self, run_ids: Iterable[int]) -> None:
        """Heartbeat the runs this worker holds (call every `interval` seconds)."""
        started = time.monotonic()
        ids = list(run_ids)
        if ids:
            Run.objects.filter(pk__in=ids, worker_id=self.worker_id).update(
                heartbeat_at=timezone.now()
            )
        self.renewed_at = started

    def claimed(self, at: float) -> None:
        """Runs just claimed carry a fresh heartbeat written at monotonic time `at`."""
        self.renewed_at = max(self.renewed_at, at)

    def holding(self, pids: Iterable[int]) -> None:
        """Tell the guard which attempt processes to kill if the lease runs out."""
        self._pids = tuple(pids)

    def start_guard(self, on_fence: Callable[[], None]) -> None:
        def guard() -> None:
            while not self._stop.wait(min(0.25, self.interval)):
                pids = [pid for pid in self._pids if pid not in self.fenced]
                age = time.monotonic() - self.renewed_at
                if pids and age > self.fence_after:
                    logger.error(
                        "worker %s could not renew its lease for %.1fs: stopping %d attempts",
                        self.worker_id,
                        age,
                        len(pids),
                    )
                    self.fenced.update(pids)
                    for pid in pids:
                        kill_group(pid)
                    on_fence()

        self._guard = threading.Thread(target=guard, daemon=True, name="lease-guard")
        self._guard.start()

    def stop_guard(self) -> None:
        self._stop.set()
        if self._guard is not None:
            self._guard.join(2)
