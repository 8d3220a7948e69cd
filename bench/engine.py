"""Engine benchmark: trigger throughput, drain throughput with 1 and 4 worker
processes, and enqueue→start latency on an idle worker.

    createdb -h 127.0.0.1 -U postgres rw_bench_engine
    DATABASE_URL=postgresql://postgres@127.0.0.1:5432/rw_bench_engine SECRET_KEY=bench \\
        .venv/bin/python bench/engine.py [--runs 10000] [--concurrency 8] [--samples 300]

Uses (and empties) the database DATABASE_URL points at; PostgreSQL is the target
configuration. Prints one line per measurement.

- trigger: `batch_trigger` (the service layer the API and SDK use), 1,000 runs per
  batch, one transaction each.
- drain: the runs are triggered into a paused queue, N `manage.py worker` processes
  start and register, then the queue is resumed (NOTIFY wakes the workers) and the
  clock runs until every run is COMPLETED. The task is a no-op: this measures the
  engine (claim, attempt process round trip, outcome), not task code.
- latency: one run at a time on an idle worker; from the commit of the trigger to the
  first line of task code (the task returns time.time()).
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "dashboard.settings")
os.environ.setdefault("SECRET_KEY", "bench")

import django  # noqa: E402

django.setup()

from django.apps import apps  # noqa: E402
from django.core.management import call_command  # noqa: E402
from django.db import connection, transaction  # noqa: E402

import bench.tasks  # noqa: E402, F401
from runs.deployments import register_tasks  # noqa: E402
from runs.environments import ensure_default_environments  # noqa: E402
from runs.lifecycle import QUEUE_CHANNEL  # noqa: E402
from runs.models import Environment, Queue, Run  # noqa: E402
from runs.sdk import registered_tasks  # noqa: E402
from runs.statuses import RunStatus  # noqa: E402
from runs.triggering import BatchItem, batch_trigger, trigger  # noqa: E402


def reset() -> Environment:
    call_command("migrate", verbosity=0)
    tables = [
        m._meta.db_table
        for m in apps.get_app_config("runs").get_models()
        if m._meta.db_table != "runs_environment"
    ]
    with connection.cursor() as cursor:
        if connection.vendor == "postgresql":
            cursor.execute(f"TRUNCATE {', '.join(tables)} CASCADE")
        else:
            for table in tables:
                cursor.execute(f"DELETE FROM {table}")
    env = {e.slug: e for e in ensure_default_environments()}["dev"]
    register_tasks(
        env, [t.spec for t in registered_tasks().values() if t.id.startswith("bench-")]
    )
    return env


def start_workers(count: int, concurrency: int) -> list[subprocess.Popen]:
    """Start `count` worker processes and wait until each has registered its tasks."""
    command = [sys.executable, "manage.py", "worker", "--env", "dev"]
    command += ["--tasks", "bench.tasks", "--concurrency", str(concurrency)]
    procs = []
    for _ in range(count):
        log = Path(tempfile.mkstemp(suffix=".log", prefix="bench-worker-")[1])
        with log.open("w") as out:
            proc = subprocess.Popen(
                command, cwd=ROOT, stdout=out, stderr=subprocess.STDOUT
            )
        proc.log = log
        procs.append(proc)
    deadline = time.monotonic() + 60
    while not all("tasks," in p.log.read_text() for p in procs):
        if time.monotonic() > deadline or any(p.poll() is not None for p in procs):
            raise RuntimeError("workers did not start:\n" + procs[0].log.read_text())
        time.sleep(0.1)
    time.sleep(1)  # attempt processes prefilled
    return procs


def stop_workers(procs: list[subprocess.Popen]) -> None:
    for proc in procs:
        proc.terminate()
    for proc in procs:
        proc.wait(timeout=60)
        proc.log.unlink(missing_ok=True)


def set_paused(env: Environment, paused: bool) -> None:
    Queue.objects.update_or_create(
        environment=env, name="bench", defaults={"paused": paused}
    )
    if connection.vendor == "postgresql":
        with connection.cursor() as cursor:
            cursor.execute(f"NOTIFY {QUEUE_CHANNEL}")


def bench_trigger(env: Environment, runs: int) -> float:
    started = time.perf_counter()
    for offset in range(0, runs, 1000):
        batch_trigger(
            env,
            [
                BatchItem("bench-noop", {"i": i})
                for i in range(offset, min(runs, offset + 1000))
            ],
        )
    return runs / (time.perf_counter() - started)


def bench_drain(env: Environment, runs: int, workers: int, concurrency: int) -> float:
    set_paused(env, True)
    Run.objects.filter(environment=env).delete()
    bench_trigger(env, runs)
    procs = start_workers(workers, concurrency)
    try:
        started = time.perf_counter()
        set_paused(env, False)
        pending = Run.objects.filter(environment=env, task_identifier="bench-noop")
        while pending.exclude(status=RunStatus.COMPLETED).exists():
            time.sleep(0.05)
        return runs / (time.perf_counter() - started)
    finally:
        stop_workers(procs)


def bench_latency(env: Environment, samples: int) -> tuple[float, float]:
    procs = start_workers(1, 4)
    latencies = []
    committed: list[float] = []
    try:
        for _ in range(samples):
            with transaction.atomic():
                # Registered before the trigger's own NOTIFY: the commit time.
                transaction.on_commit(lambda: committed.append(time.time()))
                run, _ = trigger(env, "bench-clock", {})
            finished = Run.objects.filter(pk=run.pk, status=RunStatus.COMPLETED)
            while not (output := finished.values_list("output", flat=True).first()):
                time.sleep(0.002)
            latencies.append((json.loads(output)["t"] - committed[-1]) * 1000)
            time.sleep(0.05)  # idle again
    finally:
        stop_workers(procs)
    latencies.sort()
    p99 = latencies[min(len(latencies) - 1, int(len(latencies) * 0.99))]
    return statistics.median(latencies), p99


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=10_000)
    parser.add_argument(
        "--concurrency", type=int, default=8, help="attempts per worker process"
    )
    parser.add_argument("--samples", type=int, default=300)
    parser.add_argument("--skip-drain", action="store_true")
    args = parser.parse_args()

    env = reset()
    print(
        f"database: {connection.vendor}, runs: {args.runs}, "
        f"worker concurrency: {args.concurrency}, load average: "
        f"{', '.join(f'{x:.1f}' for x in os.getloadavg())}"
    )
    print(
        f"trigger (batch_trigger, 1000/batch): {bench_trigger(env, args.runs):,.0f} runs/s"
    )
    if not args.skip_drain:
        for workers in (1, 4):
            rate = bench_drain(env, args.runs, workers, args.concurrency)
            print(f"drain with {workers} worker process(es): {rate:,.0f} runs/s")
    p50, p99 = bench_latency(env, args.samples)
    print(
        f"enqueue→start latency on an idle worker: p50 {p50:.1f} ms, p99 {p99:.1f} ms"
    )


if __name__ == "__main__":
    main()
