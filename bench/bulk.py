"""Bulk actions benchmark: bulk-cancel N queued runs and bulk-replay M failed runs,
end to end (submit → COMPLETED), processed by a real `manage.py worker` process.

    createdb -h 127.0.0.1 -U postgres rw_bench_bulk
    DATABASE_URL=postgresql://postgres@127.0.0.1:5432/rw_bench_bulk .venv/bin/python bench/bulk.py

Uses (and empties) the database DATABASE_URL points at; PostgreSQL is the target.
BENCH_CANCEL_RUNS (default 100000) and BENCH_REPLAY_RUNS (default 10000) set the
sizes. The targets are dev runs and the worker serves staging only, so nothing
but its scheduler pass (which works on every environment's bulk actions) touches
them. (Holding them in a paused queue of an environment the worker serves works
too: its claim skips a paused queue's runs without walking them.) Each measurement
also prints the CPU seconds the worker and this database's PostgreSQL processes
used: the load-independent cost.
"""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "dashboard.settings")
os.environ.setdefault("SECRET_KEY", "bench")

import django  # noqa: E402

django.setup()

from django.core.management import call_command  # noqa: E402
from django.db import connection  # noqa: E402
from django.utils import timezone  # noqa: E402

import bench.tasks  # noqa: E402, F401
from runs import bulk  # noqa: E402
from runs.deployments import register_tasks  # noqa: E402
from runs.environments import ensure_default_environments  # noqa: E402
from runs.models import BulkAction, BulkActionStatus, Run  # noqa: E402
from runs.sdk import registered_tasks  # noqa: E402
from runs.statuses import RunStatus  # noqa: E402
from runs.triggering import (  # noqa: E402
    BatchItem,
    batch_trigger,
    reserve_run_numbers,
)

CANCEL_RUNS = int(os.environ.get("BENCH_CANCEL_RUNS", "100000"))
REPLAY_RUNS = int(os.environ.get("BENCH_REPLAY_RUNS", "10000"))


def reset():
    call_command("migrate", verbosity=0)
    tables = [
        m._meta.db_table
        for m in django.apps.apps.get_app_config("runs").get_models()
        if m._meta.db_table != "runs_environment"
    ]
    with connection.cursor() as cursor:
        if connection.vendor == "postgresql":
            cursor.execute(f"TRUNCATE {', '.join(tables)}, realtime_livesignal CASCADE")
        else:
            for table in [*tables, "realtime_livesignal"]:
                cursor.execute(f"DELETE FROM {table}")
    env = {e.slug: e for e in ensure_default_environments()}["dev"]
    register_tasks(
        env, [t.spec for t in registered_tasks().values() if t.id.startswith("bench-")]
    )
    return env


def seed(env, count: int) -> list[int]:
    """`count` queued runs of bench-noop: the first 1,000 through batch_trigger, the
    rest copied from them in SQL (same columns, new ids, numbers and timestamps), so
    seeding takes seconds, not minutes."""
    _, runs, _ = batch_trigger(
        env, [BatchItem("bench-noop", {"i": i}) for i in range(min(count, 1000))]
    )
    ids = [r.pk for r in runs]
    copies = count - len(ids)
    if copies <= 0:
        return ids
    columns = [
        f.column
        for f in Run._meta.concrete_fields
        if f.column
        not in (
            "id",
            "friendly_id",
            "number",
            "created_at",
            "updated_at",
            "batch_id",
            "batch_index",
        )
    ]
    first = reserve_run_numbers(env, copies)
    with connection.cursor() as cursor:
        cursor.execute(
            f"INSERT INTO runs_run (friendly_id, number, created_at, updated_at, "
            f"{', '.join(columns)}) "
            "SELECT 'run_' || substr(md5(random()::text || n::text), 1, 25), "
            "%s + n, now() + n * interval '1 microsecond', now(), "
            f"{', '.join('t.' + c for c in columns)} "
            "FROM generate_series(0, %s - 1) AS n "
            "JOIN runs_run t ON t.id = %s RETURNING id",
            [first, copies, ids[0]],
        )
        ids.extend(pk for (pk,) in cursor.fetchall())
    return ids


def start_worker() -> subprocess.Popen:
    """Start the worker and wait until it is ready (its tasks registered and its
    attempt processes started, which takes seconds on a busy machine): otherwise its
    start-up would be timed as part of the first bulk action."""
    log = Path(tempfile.mkstemp(suffix=".log", prefix="bench-bulk-worker-")[1])
    with log.open("w") as out:
        proc = subprocess.Popen(
            [
                sys.executable,
                "manage.py",
                "worker",
                "--env",
                "staging",
                "--tasks",
                "bench.tasks",
                "--concurrency",
                "2",
            ],
            cwd=ROOT,
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    deadline = time.monotonic() + 120
    while "tasks," not in log.read_text():  # its "worker …: N tasks, …" line
        if time.monotonic() > deadline or proc.poll() is not None:
            raise RuntimeError("the worker did not start:\n" + log.read_text())
        time.sleep(0.1)
    log.unlink(missing_ok=True)
    time.sleep(0.5)
    return proc


class CpuMeter:
    """CPU seconds used by the worker process and by this database's PostgreSQL
    processes (its backends, autovacuum) while a measurement runs: the
    load-independent cost. Backends come and go (a lane thread's connection lasts one
    scheduler pass), so /proc is sampled every 20 ms and each process's last reading
    kept; what a backend used after its last sample is missed."""

    def __init__(self, worker_pid: int, database: str):
        self.worker_pid = worker_pid
        self.marker = f" {database} "
        self.seen: dict[int, float] = {}
        self.start: dict[int, float] = {}
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self._sample, daemon=True)

    @staticmethod
    def _cpu(pid: int) -> float | None:
        try:
            with open(f"/proc/{pid}/stat") as stat:
                fields = stat.read().rsplit(")", 1)[1].split()
        except OSError:
            return None
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")

    def _pids(self) -> list[int]:
        pids = [self.worker_pid]
        for entry in os.listdir("/proc"):
            if not entry.isdigit():
                continue
            try:
                with open(f"/proc/{entry}/cmdline", "rb") as cmd:
                    title = cmd.read().replace(b"\0", b" ").decode(errors="replace")
            except OSError:
                continue
            if title.startswith("postgres:") and self.marker in title + " ":
                pids.append(int(entry))
        return pids

    def _read(self) -> None:
        for pid in self._pids():
            cpu = self._cpu(pid)
            if cpu is not None:
                self.start.setdefault(pid, cpu)
                self.seen[pid] = cpu

    def _sample(self) -> None:
        while not self.stop.wait(0.02):
            self._read()

    def __enter__(self):
        self._read()
        self.thread.start()
        return self

    def __exit__(self, *exc):
        self.stop.set()
        self.thread.join()
        self._read()

    def worker(self) -> float:
        return self.seen[self.worker_pid] - self.start[self.worker_pid]

    def database(self) -> float:
        return sum(
            cpu - self.start[pid]
            for pid, cpu in self.seen.items()
            if pid != self.worker_pid
        )


@dataclass
class Timing:
    submit: float  # create_bulk_action returned (counting included)
    first: float  # its first chunk committed (RUNNING)
    total: float  # COMPLETED


def end_to_end(target: bulk.BulkTarget, action: str) -> tuple[Timing, BulkAction]:
    """Times from submit, and the finished bulk action."""
    started = time.perf_counter()
    created = bulk.create_bulk_action(target, action, via="api")
    submitted = time.perf_counter() - started
    first = None
    while True:
        created.refresh_from_db()
        if first is None and created.status != BulkActionStatus.PENDING:
            first = time.perf_counter() - started
        if created.status in (BulkActionStatus.COMPLETED, BulkActionStatus.ABORTED):
            break
        time.sleep(0.01)
    total = time.perf_counter() - started
    return Timing(submitted, first or total, total), created


def report(label: str, timing: Timing, action: BulkAction, cpu: CpuMeter) -> None:
    print(
        f"{label}: {timing.total:.2f} s end to end "
        f"({action.processed / timing.total:,.0f} runs/s; submit "
        f"{timing.submit * 1000:.0f} ms, first chunk done after {timing.first:.2f} s); "
        f"targeted {action.targeted:,}, succeeded {action.succeeded:,}, "
        f"skipped {action.skipped:,}, failed {action.failed:,}; "
        f"load average {os.getloadavg()[0]:.1f}"
    )
    print(
        f"  CPU: worker {cpu.worker():.2f} s, PostgreSQL {cpu.database():.2f} s "
        f"({(cpu.worker() + cpu.database()) / action.processed * 1e6:,.0f} µs per run; "
        f"2 cores ÷ that = {2 * action.processed / (cpu.worker() + cpu.database()):,.0f}"
        " runs/s on an idle machine)"
    )


def main() -> None:
    env = reset()
    print(
        f"database: {connection.vendor}, lanes: {bulk.lane_count()}, "
        f"load average at start: {os.getloadavg()[0]:.1f}"
    )
    started = time.perf_counter()
    queued = seed(env, CANCEL_RUNS)
    print(
        f"seeded {len(queued):,} queued runs in {time.perf_counter() - started:.1f} s"
    )
    worker = start_worker()
    database = connection.settings_dict["NAME"]
    try:
        with CpuMeter(worker.pid, database) as cpu:
            timing, action = end_to_end(
                bulk.target_from_filter(
                    env, {"task": "bench-noop", "status": "QUEUED"}
                ),
                "cancel",
            )
        report(f"bulk cancel of {CANCEL_RUNS:,} queued runs", timing, action, cpu)
        assert action.succeeded == CANCEL_RUNS, "not every run was canceled"

        failed = seed(env, REPLAY_RUNS)
        Run.objects.filter(pk__in=failed).update(
            status=RunStatus.FAILED, finished_at=timezone.now()
        )
        with CpuMeter(worker.pid, database) as cpu:
            timing, action = end_to_end(
                bulk.target_from_filter(
                    env, {"task": "bench-noop", "status": "FAILED"}
                ),
                "replay",
            )
        report(f"bulk replay of {REPLAY_RUNS:,} failed runs", timing, action, cpu)
        assert action.succeeded == REPLAY_RUNS, "not every run was replayed"
    finally:
        worker.terminate()
        worker.wait(timeout=30)


if __name__ == "__main__":
    main()
