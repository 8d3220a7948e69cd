"""Runs list page benchmark: server time of `GET /env/dev/runs/?<filters>` at 1M runs.

    createdb -h 127.0.0.1 -U postgres rw_bench
    export DATABASE_URL=postgresql://postgres@127.0.0.1:5432/rw_bench SECRET_KEY=bench
    .venv/bin/python manage.py migrate
    .venv/bin/python manage.py seed_runs --count 1000000 --seed 1
    .venv/bin/python bench/list_page.py            # BENCH_REPEAT=40 by default
    BENCH_CASES="test runs,root" .venv/bin/python bench/list_page.py   # some cases only

Each case is a full Django request through the test client (middleware, session, view,
SQL, template rendering), timed `BENCH_REPEAT` times after a warm-up, in rounds over all
cases (so load from elsewhere on the machine lands on every case alike); the script
prints wall-clock p50/p95 in milliseconds, the CPU time the request took in this
process (p50), the time its SQL queries took (p50, round trips included) and the
number of SQL queries per page. It also prints the machine's load
average: wall time on a busy 2-core machine is mostly waiting for a core
(BENCH_PRIORITY=1 raises the priority of the bench and its database backend). The first run
adds what `seed_runs` does not make (once, idempotently): three deployment versions, a
batch of queued runs, child runs, idempotency keys, a rare tag (~40 runs), a
mid-frequency tag (0.5 %) and an uncommon one (0.2 %), then ANALYZEs.
"""

from __future__ import annotations

import os
import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "dashboard.settings")
os.environ.setdefault("SECRET_KEY", "bench")

import django  # noqa: E402

django.setup()

from django.contrib.auth import get_user_model  # noqa: E402
from django.db import connection, transaction  # noqa: E402
from django.test import Client  # noqa: E402

from runs.deployments import TaskSpec, register_tasks  # noqa: E402
from runs.environments import ensure_default_environments  # noqa: E402
from runs.models import Batch, Run, RunTag  # noqa: E402
from runs.triggering import BatchItem, batch_trigger  # noqa: E402

REPEAT = int(os.environ.get("BENCH_REPEAT", "40"))
# BENCH_CASES="test runs,root": only the cases whose label contains one of these.
ONLY = [c.strip() for c in os.environ.get("BENCH_CASES", "").split(",") if c.strip()]
# BENCH_PRIORITY=1 (as root): run this process and its PostgreSQL backend at nice -10,
# to measure the server rather than the neighbours on a shared machine.
PRIORITY = os.environ.get("BENCH_PRIORITY") == "1"
TARGET_MS = 50
VERSIONS = ("20250101.1", "20250102.1", "20250103.1")
# tag → fraction of runs that carry it (besides the seed's own tags)
EXTRA_TAGS = {"vip_rare": 0.00004, "mid05": 0.005, "campaign": 0.002}


def prepare(env) -> dict:
    """Add what seed_runs leaves out; every step is skipped when already done."""
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT count(*) FROM runs_run WHERE environment_id = %s", [env.pk]
        )
        total = cursor.fetchone()[0]
    if total < 100_000:
        sys.exit(
            f"only {total} runs in dev: run `manage.py seed_runs --count 1000000` first"
        )
    if not Run.objects.filter(environment=env, version=VERSIONS[0]).exists():
        print("setup: versions, child runs, idempotency keys …", flush=True)
        with transaction.atomic(), connection.cursor() as cursor:
            cursor.execute(
                "UPDATE runs_run SET version = (ARRAY[%s, %s, %s])[1 + id %% 3] "
                "WHERE environment_id = %s",
                [*VERSIONS, env.pk],
            )
            cursor.execute(
                "UPDATE runs_run SET depth = 1, parent_id = id - 1, root_id = id - 1 "
                "WHERE environment_id = %s AND id %% 5 = 0",
                [env.pk],
            )
            cursor.execute(
                "UPDATE runs_run SET idempotency_key = 'key-' || id, "
                "idempotency_key_user = 'key-' || id "
                "WHERE environment_id = %s AND id %% 7 = 0",
                [env.pk],
            )
    for tag, fraction in EXTRA_TAGS.items():
        if RunTag.objects.filter(environment=env, tag=tag).exists():
            continue
        print(f"setup: tag {tag} on {fraction:.3%} of runs …", flush=True)
        with transaction.atomic(), connection.cursor() as cursor:
            cursor.execute(
                "CREATE TEMP TABLE picked ON COMMIT DROP AS SELECT id, created_at "
                "FROM runs_run TABLESAMPLE BERNOULLI (%s) REPEATABLE (7) "
                "WHERE environment_id = %s",
                [fraction * 100, env.pk],
            )
            cursor.execute(
                "UPDATE runs_run r SET tags = r.tags || to_jsonb(%s::text) "
                "FROM picked p WHERE p.id = r.id",
                [tag],
            )
            cursor.execute(
                "INSERT INTO runs_runtag (run_id, environment_id, tag, created_at) "
                "SELECT id, %s, %s, created_at FROM picked",
                [env.pk, tag],
            )
    if not Batch.objects.filter(environment=env).exists():
        print("setup: a batch of 500 queued runs …", flush=True)
        register_tasks(
            env,
            [TaskSpec(slug="bench-list", module="bench.tasks", function="noop")],
        )
        batch_trigger(env, [BatchItem("bench-list", {"i": i}) for i in range(500)])
    with connection.cursor() as cursor:
        cursor.execute("ANALYZE runs_run")
        cursor.execute("ANALYZE runs_runtag")
    run = Run.objects.filter(environment=env).order_by("-created_at").first()
    keyed = (
        Run.objects.filter(environment=env, idempotency_key_user__isnull=False)
        .order_by("-created_at")
        .values_list("idempotency_key_user", flat=True)
        .first()
    )
    return {
        "run_id": run.friendly_id,
        "key": keyed,
        "batch": Batch.objects.filter(environment=env).first().friendly_id,
        "total": total,
    }


def cases(ids: dict) -> list[tuple[str, str]]:
    single = [
        ("default (last 7 days)", ""),
        ("status: one status", "status=COMPLETED"),
        ("status: rare status", "status=TIMED_OUT"),
        ("status: group failed", "status=failed"),
        ("status: group finished", "status=finished"),
        ("status: group queued", "status=queued"),
        ("status: none match (running)", "status=running"),
        ("task: one", "task=send-email"),
        ("task: two", "task=send-email&task=charge-card"),
        ("tag: common (12%)", "tag=org_acme"),
        ("tag: uncommon (0.2%)", "tag=campaign"),
        ("tag: mid (0.5%)", "tag=mid05"),
        ("tag: rare (~40 runs)", "tag=vip_rare"),
        ("tag: any of two", "tag=org_acme,vip_rare"),
        ("version", f"version={VERSIONS[1]}"),
        ("batch", f"batch={ids['batch']}"),
        ("period: 5 minutes", "period=5m"),
        ("period: 1 day", "period=1d"),
        ("period: 30 days", "period=30d"),
        ("period: all time", "period=all"),
        ("from/to range", "from=2020-01-01T00:00&to=2100-01-01T00:00"),
        ("search: run id", f"search={ids['run_id']}"),
        ("search: idempotency key", f"search={ids['key']}"),
        ("root runs only", "root_only=true"),
        ("test runs only", "is_test=true"),
        ("test runs hidden", "is_test=false"),
        ("queue", "queue=orders"),
        ("machine", "machine=small-1x"),
        ("100 per page", "size=100"),
    ]
    pairs = [
        ("status + task", "status=FAILED&task=send-email"),
        ("status group + task", "status=failed&task=charge-card"),
        ("status + tag (common)", "status=FAILED&tag=org_acme"),
        ("status + tag (rare)", "status=COMPLETED&tag=vip_rare"),
        ("status + tag (mid)", "status=CANCELED&tag=mid05"),
        ("task + tag", "task=send-email&tag=org_globex"),
        ("task + version", f"task=fraud-check&version={VERSIONS[0]}"),
        ("task + period 30d", "task=generate-report&period=30d"),
        ("status + period 1d", "status=CRASHED&period=1d"),
        ("tag + period 30d", "tag=priority&period=30d"),
        ("root only + status", "root_only=true&status=failed"),
        ("test runs + task", "is_test=true&task=sync-inventory"),
        ("status + task + 30d", "status=TIMED_OUT&task=resize-image&period=30d"),
    ]
    return single + pairs


def url_of(query: str) -> str:
    return f"/env/dev/runs/?{query}" if query else "/env/dev/runs/"


def check(client: Client, query: str) -> tuple[int, int]:
    """Warm the case up, check it renders without an error; (queries, rows)."""
    url = url_of(query)
    client.get(url)
    executed = []

    def count(execute, sql, params, many, context):
        executed.append(sql)
        return execute(sql, params, many, context)

    with connection.execute_wrapper(count):
        response = client.get(url)
    assert response.status_code == 200, (url, response.status_code)
    assert b'role="alert"' not in response.content, url
    return len(executed), response.content.count(b'<tr id="run-')


def measure(client: Client, queries: list[str]) -> dict[str, tuple[list, list, list]]:
    """REPEAT rounds over every case in turn, so a burst of load from elsewhere on the
    machine lands on all cases alike instead of on whichever case was running."""
    samples: dict[str, tuple[list, list, list]] = {q: ([], [], []) for q in queries}
    sql_time = [0.0]

    def timed(execute, sql, params, many, context):
        started = time.perf_counter()
        try:
            return execute(sql, params, many, context)
        finally:
            sql_time[0] += time.perf_counter() - started

    with connection.execute_wrapper(timed):
        for _ in range(REPEAT):
            for query in queries:
                sql_time[0] = 0.0
                started, started_cpu = time.perf_counter(), time.process_time()
                client.get(url_of(query))
                samples[query][0].append((time.perf_counter() - started) * 1000)
                samples[query][1].append((time.process_time() - started_cpu) * 1000)
                samples[query][2].append(sql_time[0] * 1000)
    return samples


def next_page_query(client: Client, query: str, name: str) -> str:
    import re

    body = client.get(f"/env/dev/runs/?{query}").content.decode()
    link = re.search(rf'rel="{name}" href="\?([^"]+)"', body)
    return link.group(1).replace("&amp;", "&")


def main() -> None:
    if connection.vendor != "postgresql":
        sys.exit("point DATABASE_URL at PostgreSQL")
    env = {e.slug: e for e in ensure_default_environments()}["dev"]
    ids = prepare(env)
    if PRIORITY:
        with connection.cursor() as cursor:
            cursor.execute("SELECT pg_backend_pid()")
            backend = cursor.fetchone()[0]
        os.setpriority(os.PRIO_PROCESS, 0, -10)
        os.setpriority(os.PRIO_PROCESS, backend, -10)
    user, _ = get_user_model().objects.get_or_create(
        username="bench", defaults={"is_superuser": True, "is_staff": True}
    )
    client = Client(SERVER_NAME="localhost")
    client.force_login(user)
    all_cases = cases(ids)
    page2 = next_page_query(client, "", "next")
    all_cases.append(("page 2 (after cursor)", page2))
    all_cases.append(
        ("back to page 1 (before)", next_page_query(client, page2, "prev"))
    )
    tag_page2 = next_page_query(client, "tag=org_acme", "next")
    all_cases.append(("tag: common, page 2", tag_page2))
    if ONLY:
        all_cases = [c for c in all_cases if any(part in c[0] for part in ONLY)]

    print(
        f"runs list page, {ids['total']:,} runs in dev, {REPEAT} requests per case, "
        f"PostgreSQL {connection.cursor().connection.info.server_version}, "
        f"load average {os.getloadavg()[0]:.1f} on {os.cpu_count()} cores"
        f"{', bench and its database backend at nice -10' if PRIORITY else ''}"
    )
    print(
        f"| {'case':32} | rows | queries | p50 ms | p95 ms | CPU p50 ms | SQL p50 ms |"
    )
    print(f"|{'-' * 34}|-----:|--------:|-------:|-------:|-----------:|-----------:|")
    worst = 0.0
    shape = {query: check(client, query) for _, query in all_cases}
    samples = measure(client, [query for _, query in all_cases])
    for label, query in all_cases:
        timings, cpu, sql = samples[query]
        queries, rows = shape[query]
        p50 = statistics.median(timings)
        p95 = statistics.quantiles(timings, n=20)[-1]
        worst = max(worst, p95)
        flag = "" if p95 <= TARGET_MS else "  ← over target"
        print(
            f"| {label:32} | {rows:4} | {queries:7} | {p50:6.1f} | {p95:6.1f} "
            f"| {statistics.median(cpu):10.1f} | {statistics.median(sql):10.1f} |{flag}"
        )
    print(f"worst p95: {worst:.1f} ms (target ≤ {TARGET_MS} ms)")
    print(f"load average at the end: {os.getloadavg()[0]:.1f}")
    print(offset_comparison(env))


def offset_comparison(env) -> str:
    """What the list would cost with COUNT(*) + OFFSET, as Django admin paginates."""
    runs = Run.objects.filter(environment=env).order_by("-created_at", "-id")
    started = time.perf_counter()
    runs.count()
    list(runs.values_list("id", flat=True)[20_000:20_025])
    elapsed = (time.perf_counter() - started) * 1000
    return (
        f"for comparison, COUNT(*) + OFFSET 20000 on the same table: {elapsed:.0f} ms"
    )


if __name__ == "__main__":
    main()
