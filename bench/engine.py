"""Engine benchmark: trigger throughput, drain throughput with 1 and 4 worker
processes, and enqueue→start latency on an idle worker.

    DATABASE_URL=postgres://postgres@127.0.0.1:5432/runwatch_bench .venv/bin/python bench/engine.py

Uses (and empties) the database DATABASE_URL points at; PostgreSQL is the target
configuration. Prints one line per measurement.
"""

from __future__ import annotations

import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "dashboard.settings")
os.environ.setdefault("SECRET_KEY", "bench")

import django  # noqa: E402

django.setup()

from django.core.management import call_command  # noqa: E402
from django.db import connection  # noqa: E402

import bench.tasks  # noqa: E402, F401
from runs.deployments import register_tasks  # noqa: E402
from runs.environments import ensure_default_environments  # noqa: E402
from runs.lifecycle import QUEUE_CHANNEL  # noqa: E402
from runs.models import Queue, Run  # noqa: E402
from runs.sdk import registered_tasks  # noqa: E402
from runs.statuses import RunStatus  # noqa: E402
from runs.triggering import BatchItem, batch_trigger, trigger  # noqa: E402

RUNS = int(os.environ.get("BENCH_RUNS", "10000"))
CONCURRENCY = int(os.environ.get("BENCH_WORKER_CONCURRENCY", "8"))


def reset():
    call_command("migrate", verbosity=0)
    with connection.cursor() as cursor:
        tables = ", ".join(
            m._meta.db_table
            for m in django.apps.apps.get_app_config("runs").get_models()
            if m._meta.db_table not in ("runs_environment",)
        )
        if connection.vendor == "postgresql":
            cursor.execute(f"TRUNCATE {tables} CASCADE")
        else:
            for table in tables.split(", "):
                cursor.execute(f"DELETE FROM {table}")
    env = {e.slug: e for e in ensure_default_environments()}["dev"]
    register_tasks(
        env, [t.spec for t in registered_tasks().values() if t.id.startswith("bench-")]
    )
    return env


def start_workers(count: int) -> list[subprocess.Popen]:
    cmd = [
        sys.executable,
        "manage.py",
        "worker",
        "--env",
        "dev",
        "--tasks",
        "bench.tasks",
        "--concurrency",
        str(CONCURRENCY),
    ]
    procs = [
        subprocess.Popen(
            cmd, cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
        )
        for _ in range(count)
    ]
    time.sleep(4)  # let them import, register and warm their attempt processes
    return procs


def stop_workers(procs) -> None:
    for proc in procs:
        proc.terminate()
    for proc in procs:
        proc.wait(timeout=30)


def set_paused(env, paused: bool) -> None:
    Queue.objects.update_or_create(
        environment=env, name="bench", defaults={"paused": paused}
    )
    if connection.vendor == "postgresql":
        with connection.cursor() as cursor:
            cursor.execute(f"NOTIFY {QUEUE_CHANNEL}")


def bench_trigger(env) -> float:
    started = time.perf_counter()
    for offset in range(0, RUNS, 1000):
        batch_trigger(
            env,
            [
                BatchItem("bench-noop", {"i": i})
                for i in range(offset, min(RUNS, offset + 1000))
            ],
        )
    return RUNS / (time.perf_counter() - started)


def bench_drain(env, workers: int) -> float:
    set_paused(env, True)
    Run.objects.filter(environment=env).delete()
    bench_trigger(env)
    procs = start_workers(workers)
    try:
        started = time.perf_counter()
        set_paused(env, False)
        while (
            Run.objects.filter(environment=env, task_identifier="bench-noop")
            .exclude(status=RunStatus.COMPLETED)
            .exists()
        ):
            time.sleep(0.05)
        return RUNS / (time.perf_counter() - started)
    finally:
        stop_workers(procs)


def bench_latency(env, samples: int = 200) -> tuple[float, float]:
    procs = start_workers(1)
    latencies = []
    try:
        for _ in range(samples):
            run, _ = trigger(env, "bench-clock", {})
            committed = time.time()
            while True:
                run.refresh_from_db(fields=["status", "output"])
                if run.status == RunStatus.COMPLETED:
                    break
                time.sleep(0.002)
            import json

            latencies.append((json.loads(run.output)["t"] - committed) * 1000)
            time.sleep(0.02)
    finally:
        stop_workers(procs)
    latencies.sort()
    return statistics.median(latencies), latencies[int(len(latencies) * 0.99) - 1]


def main() -> None:
    env = reset()
    print(
        f"database: {connection.vendor}, runs: {RUNS}, worker concurrency: {CONCURRENCY}"
    )
    Run.objects.all().delete()
    print(f"trigger (batch_trigger, 1000/batch): {bench_trigger(env):,.0f} runs/s")
    for workers in (1, 4):
        print(
            f"drain with {workers} worker process(es): {bench_drain(env, workers):,.0f} runs/s"
        )
    p50, p99 = bench_latency(env)
    print(
        f"enqueue→start latency on an idle worker: p50 {p50:.1f} ms, p99 {p99:.1f} ms"
    )


if __name__ == "__main__":
    main()
