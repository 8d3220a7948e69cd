"""API benchmark: list latency at 1,000,000 runs, trigger throughput over HTTP with
two server processes (daphne, or uvicorn with --server uvicorn), and the time to accept a 1,000-item batch.

    createdb -h 127.0.0.1 -U postgres rw_bench_api
    DATABASE_URL=postgresql://postgres@127.0.0.1:5432/rw_bench_api \\
    REDIS_URL=redis://127.0.0.1:6379/1 .venv/bin/python bench/api.py [--runs 1000000] [--port 8150]

Seeds the `prod` environment up to --runs runs once (`manage.py seed_runs`, 30 days,
three versions, one 500-run batch, one 1,000-run bulk action) and reuses them on later
runs. Triggers go to `staging`. Servers are real daphne (or uvicorn) processes on --port and
--port+1; the client is a small keep-alive HTTP/1.1 client on asyncio. The rate
limiter stays on (Redis when REDIS_URL is set) with a limit the benchmark cannot reach.
Prints one line per measurement.
"""

from __future__ import annotations

import argparse
import asyncio
import json
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
from django.utils import timezone  # noqa: E402

from runs.demo.history import TASKS  # noqa: E402
from runs.deployments import TaskSpec, register_tasks  # noqa: E402
from runs.environments import ensure_default_environments  # noqa: E402
from runs.models import (  # noqa: E402
    Batch,
    BulkAction,
    BulkActionItem,
    Deployment,
    Environment,
    Run,
)
from runs.triggering import BatchItem, batch_trigger  # noqa: E402

SERVER_ENV = {
    "RUNWATCH_API_RATE_LIMIT": "100000000",
    "RUNWATCH_API_RATE_REFILL_PER_SECOND": "1000000",
    "RUNWATCH_LOG_LEVEL": "WARNING",
    "DB_POOL_MAX_SIZE": os.environ.get("DB_POOL_MAX_SIZE", "8"),
    "PGAPPNAME": "runwatch-bench-api",  # to find the servers' PostgreSQL backends
}


# --- a minimal keep-alive HTTP/1.1 client --------------------------------------------


class Connection:
    def __init__(self, host: str, port: int) -> None:
        self.host, self.port = host, port
        self.reader: asyncio.StreamReader | None = None
        self.writer: asyncio.StreamWriter | None = None

    async def request(
        self, method: str, path: str, headers: dict[str, str], body: bytes = b""
    ) -> tuple[int, bytes]:
        if self.writer is None:
            self.reader, self.writer = await asyncio.open_connection(
                self.host, self.port
            )
        lines = [f"{method} {path} HTTP/1.1", f"Host: {self.host}:{self.port}"]
        lines += [f"{k}: {v}" for k, v in headers.items()]
        lines.append(f"Content-Length: {len(body)}")
        self.writer.write(("\r\n".join(lines) + "\r\n\r\n").encode() + body)
        await self.writer.drain()
        status_line = await self.reader.readline()
        status = int(status_line.split()[1])
        length, chunked = 0, False
        while (line := await self.reader.readline()) not in (b"\r\n", b""):
            name, _, value = line.decode().partition(":")
            if name.lower() == "content-length":
                length = int(value)
            elif name.lower() == "transfer-encoding" and "chunked" in value:
                chunked = True
        if not chunked:
            return status, await self.reader.readexactly(length)
        data = b""
        while size := int((await self.reader.readline()).strip(), 16):
            data += await self.reader.readexactly(size)
            await self.reader.readline()
        await self.reader.readline()
        return status, data

    def close(self) -> None:
        if self.writer is not None:
            self.writer.close()


def auth(key: str) -> dict[str, str]:
    return {
        "Authorization": f"Bearer {key}",
        "Content-Type": "application/json",
        "x-trigger-api-version": "2025-07-16",
    }


# --- setup -----------------------------------------------------------------------


def versions(environment: Environment) -> list[str]:
    for machine in ("small-1x", "small-2x", "medium-1x"):
        register_tasks(
            environment,
            [
                TaskSpec(
                    slug=slug,
                    module="bench.tasks",
                    function="bench_noop",
                    queue=queue,
                    machine=machine,
                )
                for slug, (queue, _, _) in TASKS.items()
            ],
        )
    return list(
        Deployment.objects.filter(environment=environment).values_list(
            "version", flat=True
        )
    )


def seed(target: int) -> Environment:
    call_command("migrate", verbosity=0)
    envs = {e.slug: e for e in ensure_default_environments()}
    prod = envs["prod"]
    versions(prod)
    existing = Run.objects.filter(environment=prod).count()
    if existing < target:
        print(f"seeding {target - existing} runs into prod …", flush=True)
        call_command("seed_runs", count=target - existing, env="prod", seed=7)
    if not Batch.objects.filter(environment=prod).exists():
        batch_trigger(prod, [BatchItem("send-email", {"i": i}) for i in range(500)])
    if not BulkAction.objects.filter(environment=prod).exists():
        bulk = BulkAction.objects.create(environment=prod, type="CANCEL", name="bench")
        ids = (
            Run.objects.filter(environment=prod, status="FAILED")
            .order_by("-created_at")
            .values_list("pk", flat=True)[:1000]
        )
        BulkActionItem.objects.bulk_create(
            BulkActionItem(bulk_action=bulk, run_id=pk, outcome="succeeded")
            for pk in ids
        )
    with connection.cursor() as cursor:
        cursor.execute("ANALYZE")
    staging = envs["staging"]
    register_tasks(
        staging,
        [TaskSpec(slug="bench-noop", module="bench.tasks", function="bench_noop")],
    )
    return prod


def server_command(server: str, port: int, app: str | None) -> list[str]:
    if server == "uvicorn":
        return [
            *(sys.executable, "-m", "uvicorn", "--host", "127.0.0.1", "--port"),
            *(str(port), "--loop", "uvloop", "--http", "httptools", "--no-access-log"),
            app or "dashboard.asgi:api_application",
        ]
    return [
        *(sys.executable, "-m", "daphne", "-b", "127.0.0.1", "-p", str(port)),
        app or "dashboard.asgi:application",
    ]


def start_servers(
    port: int, count: int, app: str | None = None, server: str = "daphne"
) -> list[subprocess.Popen]:
    procs = [
        subprocess.Popen(
            server_command(server, port + i, app),
            cwd=ROOT,
            env={**os.environ, **SERVER_ENV},
            stdout=subprocess.DEVNULL,
            stderr=(ROOT / "var" / f"bench-api-{port + i}.log").open("w"),
        )
        for i in range(count)
    ]
    for i in range(count):
        deadline = time.monotonic() + 30
        while True:
            try:
                asyncio.run(_ping(port + i))
                break
            except OSError:
                if time.monotonic() > deadline:
                    raise RuntimeError(f"{server} did not start") from None
                time.sleep(0.2)
    return procs


async def _ping(port: int) -> None:
    conn = Connection("127.0.0.1", port)
    await conn.request("GET", "/api/openapi.json", {})
    conn.close()


def stop_servers(procs: list[subprocess.Popen]) -> None:
    for proc in procs:
        proc.terminate()
    for proc in procs:
        proc.wait(timeout=20)


# --- measurements ----------------------------------------------------------------


def percentiles(samples: list[float]) -> tuple[float, float]:
    ordered = sorted(samples)
    return statistics.median(ordered), ordered[max(0, int(len(ordered) * 0.95) - 1)]


async def list_latency(
    port: int, key: str, query: str, samples: int
) -> tuple[float, float, int]:
    conn = Connection("127.0.0.1", port)
    times, count = [], 0
    for i in range(samples + 3):
        started = time.perf_counter()
        status, body = await conn.request("GET", f"/api/v1/runs?{query}", auth(key))
        elapsed = (time.perf_counter() - started) * 1000
        if status != 200:
            raise RuntimeError(f"{query}: HTTP {status} {body[:200]!r}")
        if i >= 3:  # warm-up
            times.append(elapsed)
            count = len(json.loads(body)["data"])
    conn.close()
    p50, p95 = percentiles(times)
    return p50, p95, count


async def deep_cursor(port: int, key: str, pages: int) -> str:
    """A cursor `pages` pages of 100 into the default window."""
    conn = Connection("127.0.0.1", port)
    query = "page[size]=100"
    for _ in range(pages):
        _, body = await conn.request("GET", f"/api/v1/runs?{query}", auth(key))
        cursor = json.loads(body)["pagination"].get("next")
        if cursor is None:
            break
        query = "page[size]=100&page[after]=" + cursor
    conn.close()
    return query.replace("page[size]=100", "page[size]=25")


def bench_list(port: int, prod: Environment, samples: int) -> None:
    key = prod.api_key
    now_ms = int(timezone.now().timestamp() * 1000)
    version = (
        Deployment.objects.filter(environment=prod)
        .order_by("created_at")
        .values_list("version", flat=True)
        .first()
    )
    batch = Batch.objects.filter(environment=prod).first().friendly_id
    bulk = BulkAction.objects.filter(environment=prod).first().friendly_id
    cases = {
        "first page (25)": "",
        "first page (100)": "page[size]=100",
        "filter[status]=FAILED": "filter[status]=FAILED",
        "filter[status]=COMPLETED,CANCELED": "filter[status]=COMPLETED,CANCELED",
        "filter[taskIdentifier]=send-email": "filter[taskIdentifier]=send-email",
        f"filter[version]={version}": f"filter[version]={version}",
        "filter[tag]=org_acme": "filter[tag]=org_acme",
        "filter[tag]=beta,eu": "filter[tag]=beta,eu",
        "filter[bulkAction]": f"filter[bulkAction]={bulk}",
        "filter[schedule]": "filter[schedule]=sched_1",
        "filter[isTest]=true": "filter[isTest]=true",
        "filter[isTest]=false": "filter[isTest]=false",
        "filter[createdAt][period]=1h": "filter[createdAt][period]=1h",
        "filter[createdAt][period]=30d": "filter[createdAt][period]=30d",
        "filter[createdAt][from,to] (a 2-day span)": f"filter[createdAt][from]={now_ms - 20 * 86_400_000}&filter[createdAt][to]={now_ms - 18 * 86_400_000}",
        "filter[batch]": f"filter[batch]={batch}",
        "filter[queue]=orders": "filter[queue]=orders",
        "filter[machine]=medium-1x (no match)": "filter[machine]=medium-1x",
        "deep cursor (25 runs, 20,000 in)": asyncio.run(deep_cursor(port, key, 200)),
    }
    total = Run.objects.filter(environment=prod).count()
    print(
        f"list latency over HTTP, {total:,} runs in the environment, {samples} sequential requests each"
    )
    for name, query in cases.items():
        p50, p95, count = asyncio.run(list_latency(port, key, query, samples))
        flag = "" if p95 <= 50 else "  (over the 50 ms target)"
        print(
            f"  {name:<45} p50 {p50:6.1f} ms  p95 {p95:6.1f} ms  ({count} items){flag}"
        )


async def trigger_load(
    ports: list[int], key: str, total: int, concurrency: int, sdk: bool = False
) -> tuple[float, int]:
    """`total` triggers over `concurrency` keep-alive connections spread over `ports`.
    `sdk` sends what the SDK sends: a superjson payload and a request idempotency key."""
    payload = {"hello": "world"}
    options = {"tags": ["bench"]}
    if sdk:
        body = {
            "payload": json.dumps({"json": payload}),
            "options": {**options, "payloadType": "application/super+json"},
        }
    else:
        body = {"payload": payload, "options": options}
    data = json.dumps(body).encode()
    counter = iter(range(total))
    errors = 0

    async def worker(index: int) -> None:
        nonlocal errors
        conn = Connection("127.0.0.1", ports[index % len(ports)])
        for n in counter:
            headers = auth(key)
            if sdk:
                headers["x-trigger-request-idempotency-key"] = f"{time.time_ns()}-{n}"
            status, _ = await conn.request(
                "POST", "/api/v1/tasks/bench-noop/trigger", headers, data
            )
            errors += status != 200
        conn.close()

    started = time.perf_counter()
    await asyncio.gather(*(worker(i) for i in range(concurrency)))
    return total / (time.perf_counter() - started), errors


async def batch_accept(port: int, key: str, items: int) -> float:
    conn = Connection("127.0.0.1", port)
    lines = "".join(
        json.dumps(
            {
                "index": i,
                "task": "bench-noop",
                "payload": json.dumps({"json": {"i": i}}),
                "options": {"payloadType": "application/super+json"},
            }
        )
        + "\n"
        for i in range(items)
    ).encode()
    started = time.perf_counter()
    status, body = await conn.request(
        "POST", "/api/v3/batches", auth(key), json.dumps({"runCount": items}).encode()
    )
    if status != 202:
        raise RuntimeError(f"create batch: HTTP {status} {body[:300]!r}")
    batch_id = json.loads(body)["id"]
    headers = {**auth(key), "Content-Type": "application/x-ndjson"}
    status, body = await conn.request(
        "POST", f"/api/v3/batches/{batch_id}/items", headers, lines
    )
    elapsed = time.perf_counter() - started
    answer = json.loads(body)
    if status != 200 or not answer["sealed"] or answer["itemsAccepted"] != items:
        raise RuntimeError(f"batch not accepted: {status} {answer}")
    conn.close()
    return elapsed


def cpu_seconds(pids: list[int]) -> float:
    """User + system CPU of processes (all their threads), from /proc."""
    ticks = os.sysconf("SC_CLK_TCK")
    total = 0
    for pid in pids:
        try:
            fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        except FileNotFoundError:  # a backend that ended
            continue
        total += int(fields[11]) + int(fields[12])
    return total / ticks


def backend_pids() -> list[int]:
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT pid FROM pg_stat_activity WHERE application_name = %s",
            [SERVER_ENV["PGAPPNAME"]],
        )
        return [pid for (pid,) in cursor.fetchall()]


def machine_busy_seconds() -> float:
    """CPU time every core of the machine spent busy so far (/proc/stat)."""
    fields = Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]
    user, nice, system, _idle, _iowait, irq, softirq, steal = map(int, fields[:8])
    return (user + nice + system + irq + softirq + steal) / os.sysconf("SC_CLK_TCK")


def measured_load(ports, servers, key, total, concurrency, sdk=False) -> str:
    """Runs `trigger_load` and reports its rate, the CPU it cost per trigger, and how
    busy the machine was meanwhile (on a shared machine: how much of it went to
    other work, which the rate suffers from and the CPU figures mostly do not)."""
    backends = backend_pids()
    started = time.monotonic()
    before = (
        cpu_seconds(servers),
        cpu_seconds(backends),
        time.process_time(),
        machine_busy_seconds(),
    )
    rate, errors = asyncio.run(trigger_load(ports, key, total, concurrency, sdk))
    after = (
        cpu_seconds(servers),
        cpu_seconds(backends),
        time.process_time(),
        machine_busy_seconds(),
    )
    elapsed = time.monotonic() - started
    server, postgres, client, _ = (
        (b - a) * 1000 / total for a, b in zip(before, after, strict=True)
    )
    busy = (after[3] - before[3]) / elapsed
    other = busy - (server + postgres + client) * total / 1000 / elapsed
    return (
        f"{rate:,.0f} runs/s ({errors} errors); CPU per trigger: server {server:.2f} ms, "
        f"PostgreSQL {postgres:.2f} ms, bench client {client:.2f} ms; machine busy "
        f"{busy:.1f} of {os.cpu_count()} cores, {max(other, 0):.1f} outside these"
    )


def bench_writes(
    ports: list[int],
    servers: list[int],
    staging: Environment,
    triggers: int,
    batch: bool = True,
    server: str = "daphne",
) -> None:
    key = staging.api_key
    asyncio.run(trigger_load(ports, key, 400, 16))  # warm-up: fill the pools
    for concurrency in (8, 32):
        result = measured_load(ports, servers, key, triggers, concurrency)
        print(
            f"single triggers over HTTP, 2 {server} processes, {concurrency} connections: {result}"
        )
    result = measured_load(ports, servers, key, triggers, 16, sdk=True)
    print(
        f"single triggers as the SDK sends them (superjson, request idempotency key), 16 connections: {result}"
    )
    if not batch:
        return
    times = [asyncio.run(batch_accept(ports[0], key, 1000)) for _ in range(5)]
    print(
        f"batch of 1,000 items accepted (create + NDJSON items, sealed): median {statistics.median(times) * 1000:.0f} ms, max {max(times) * 1000:.0f} ms"
    )


def loadavg() -> str:
    return ", ".join(f"{x:.1f}" for x in os.getloadavg())


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--runs", type=int, default=1_000_000)
    parser.add_argument("--port", type=int, default=8150)
    parser.add_argument("--samples", type=int, default=40)
    parser.add_argument("--triggers", type=int, default=5000)
    parser.add_argument("--only", choices=["list", "writes"], default=None)
    parser.add_argument(
        "--server",
        choices=["daphne", "uvicorn"],
        default="daphne",
        help="daphne serving dashboard.asgi:application, or uvicorn (httptools, "
        "uvloop) serving dashboard.asgi:api_application",
    )
    parser.add_argument(
        "--app",
        default=None,
        help="another ASGI app to serve (dashboard.asgi:django_asgi_app: Django's own "
        "handler with the whole middleware stack, for comparison)",
    )
    parser.add_argument(
        "--no-batch", action="store_true", help="skip the 1,000-item batch timing"
    )
    args = parser.parse_args()
    if connection.vendor != "postgresql":
        print("note: the targets are for PostgreSQL (set DATABASE_URL)")
    print(f"machine: {os.cpu_count()} cores, load average {loadavg()}")
    prod = seed(args.runs)
    staging = Environment.objects.get(slug="staging")
    procs = start_servers(args.port, 2, args.app, args.server)
    try:
        if args.only in (None, "list"):
            bench_list(args.port, prod, args.samples)
        if args.only in (None, "writes"):
            bench_writes(
                [args.port, args.port + 1],
                [proc.pid for proc in procs],
                staging,
                args.triggers,
                batch=not args.no_batch,
                server=args.server,
            )
    finally:
        stop_servers(procs)
    print(f"load average after: {loadavg()}")


if __name__ == "__main__":
    main()
