"""Live feed benchmark: N websocket clients watch the dev runs list while R run
transitions per second are committed; prints commit→client latency and how much of
what changed reached every client.

    createdb -h 127.0.0.1 -U postgres rw_bench_live
    DATABASE_URL=postgresql://postgres@127.0.0.1:5432/rw_bench_live \\
    REDIS_URL=redis://127.0.0.1:6379/3 .venv/bin/python bench/live.py \\
        [--clients 100,500,1000] [--rates 100,1000] [--seconds 10] [--pool 25] \\
        [--design relay|naive] [--server daphne|uvicorn]

One daphne process (or uvicorn with `--server uvicorn`) serves `dashboard.asgi` (design "relay", the product) or
`bench.live_naive` (design "naive": a Redis channel-layer group_send of the rendered
row per change, for comparison). The clients (two processes of minimal asyncio
websocket clients, see below) acknowledge messages like static/js/app.js does. `--pool` runs cycle EXECUTING ↔
WAITING, round robin, committed in small batches with `transition_many`. With the
default pool of 25 (one page) every transition is on a row every client shows: the
worst case. With a larger pool only the 25 newest runs are on the page, and only
transitions on runs a client shows count.

A transition counts as delivered to a client when that client receives the run's row
in that state or a newer one (coalescing skips intermediate states by design); its
latency is the time from its commit to that reception. "final" is the fraction of
(client, run) pairs whose last received row is the run's final state.
"""

from __future__ import annotations

import argparse
import asyncio
import bisect
import json
import multiprocessing
import os
import re
import subprocess
import sys
import time
from functools import partial
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "dashboard.settings")
os.environ.setdefault("SECRET_KEY", "bench")

ROW = re.compile(rb'<tr id="run-(run_\w+)"[^>]*? data-updated="([^"]+)"')
ACK = re.compile(rb'<div id="live-state"[^>]*? data-seq="(\d+)" data-ack')


# --- clients (a separate process each) ---------------------------------------------
#
# The clients share the two cores with the server, so they are as cheap as a client
# that still receives and checks every message can be: a minimal websocket client on
# an asyncio Protocol (handshake, unmasked server frames, pings, masked acks), the
# arrival time taken when a message's last byte arrives, and one bytes regex per
# message for the rows it carries (each row's id and version is logged, as before).


class Client(asyncio.Protocol):
    def __init__(self, request: bytes, log: list, ready) -> None:
        self.request = request
        self.log = log
        self.ready = ready
        self.buffer = bytearray()
        self.parts: list[bytes] = []
        self.open = False
        self.messages = 0
        self.closed = asyncio.get_running_loop().create_future()

    def connection_made(self, transport) -> None:
        self.transport = transport
        transport.write(self.request)

    def connection_lost(self, exc) -> None:
        if not self.closed.done():
            self.closed.set_result(self.messages)

    def data_received(self, data: bytes) -> None:
        now = time.time()
        self.buffer += data
        if not self.open:
            end = self.buffer.find(b"\r\n\r\n")
            if end < 0:
                return
            if b" 101 " not in self.buffer[: self.buffer.find(b"\r\n")]:
                self.transport.close()  # refused: the caller retries
                return
            del self.buffer[: end + 4]
            self.open = True
        self._frames(now)

    def _frames(self, now: float) -> None:
        buffer = self.buffer
        while len(buffer) >= 2:
            first, length = buffer[0], buffer[1] & 0x7F
            start = 2
            if length == 126:
                if len(buffer) < 4:
                    return
                length, start = int.from_bytes(buffer[2:4], "big"), 4
            elif length == 127:
                if len(buffer) < 10:
                    return
                length, start = int.from_bytes(buffer[2:10], "big"), 10
            if len(buffer) < start + length:
                return
            payload = bytes(buffer[start : start + length])
            del buffer[: start + length]
            opcode = first & 0x0F
            if opcode in (0, 1, 2):
                self.parts.append(payload)
                if first & 0x80:  # FIN
                    message = b"".join(self.parts)
                    self.parts = []
                    self._message(message, now)
            elif opcode == 9:  # ping
                self._send(0xA, payload)
            elif opcode == 8:  # close
                self.transport.close()
                return

    def _message(self, message: bytes, now: float) -> None:
        log = self.log
        for fid, updated in ROW.findall(message):
            log.append((now, fid, updated))
        ack = ACK.search(message, max(0, len(message) - 300))  # the last element
        if ack:  # the server asks for an acknowledgement now and then
            self._send(0x1, b'{"ack": %s}' % ack.group(1))
        self.messages += 1
        if self.messages == 1:
            self.ready()

    def _send(self, opcode: int, payload: bytes) -> None:
        mask = os.urandom(4)  # clients mask what they send (RFC 6455)
        masked = bytes(b ^ mask[i % 4] for i, b in enumerate(payload))
        header = bytes([0x80 | opcode, 0x80 | len(payload)])  # short payloads only
        self.transport.write(header + mask + masked)


def _handshake(host: str, port: int, path: str, headers: dict) -> bytes:
    import base64

    key = base64.b64encode(os.urandom(16)).decode()
    lines = [
        f"GET {path} HTTP/1.1",
        f"Host: {host}:{port}",
        "Upgrade: websocket",
        "Connection: Upgrade",
        f"Sec-WebSocket-Key: {key}",
        "Sec-WebSocket-Version: 13",
        *(f"{name}: {value}" for name, value in headers.items()),
    ]
    return ("\r\n".join(lines) + "\r\n\r\n").encode()


async def _client(url: str, headers: dict, ready, log: list, stop: asyncio.Event):
    import random
    from urllib.parse import urlsplit

    parts = urlsplit(url)
    loop = asyncio.get_running_loop()
    for attempt in range(20):  # like htmx: retry a failed connection with jitter
        try:
            request = _handshake(parts.hostname, parts.port, parts.path, headers)
            transport, client = await loop.create_connection(
                partial(Client, request, log, ready), parts.hostname, parts.port
            )
        except OSError:
            client = None
        if client is not None:
            ended = asyncio.ensure_future(asyncio.shield(client.closed))
            stopping = asyncio.ensure_future(stop.wait())
            await asyncio.wait({ended, stopping}, return_when=asyncio.FIRST_COMPLETED)
            if stop.is_set():
                transport.close()
                ended.cancel()
                return
            stopping.cancel()
            ready = _once(
                ready, client.messages > 0
            )  # a reconnect is not "ready" again
        await asyncio.sleep(random.uniform(0.5, 1.0) * min(2**attempt, 8))


def _once(ready, fired: bool):
    return (lambda: None) if fired else ready


def client_process(url, headers, count, rate, ready_counter, stop_flag, out_path):
    async def main():
        stop = asyncio.Event()
        logs: list[list] = [[] for _ in range(count)]

        def ready():
            with ready_counter.get_lock():
                ready_counter.value += 1

        tasks = []
        for i in range(count):
            tasks.append(
                asyncio.create_task(_client(url, headers, ready, logs[i], stop))
            )
            if i % 10 == 9:  # a steady ramp: a handshake burst on a busy machine
                await asyncio.sleep(10 / rate)  # starves daphne's database thread
        while not stop_flag.value:
            await asyncio.sleep(0.1)
        stop.set()
        await asyncio.gather(*tasks, return_exceptions=True)
        decoded = [
            [(at, fid.decode(), version.decode()) for at, fid, version in log]
            for log in logs
        ]
        Path(out_path).write_text(json.dumps(decoded))

    asyncio.run(main())


def negotiated_extensions(url: str, headers: dict) -> str:
    """What the server answers a browser-like client that offers permessage-deflate
    (per-connection compression would cost the server a deflate per message)."""
    import websockets.sync.client

    with websockets.sync.client.connect(url, additional_headers=headers) as ws:
        return ws.response.headers.get("Sec-WebSocket-Extensions") or "none"


# --- the bench ----------------------------------------------------------------------


def setup(pool: int):
    import django

    django.setup()
    from django.contrib.auth import get_user_model
    from django.contrib.sessions.backends.db import SessionStore
    from django.core.management import call_command

    from runs.deployments import TaskSpec, register_tasks
    from runs.environments import ensure_default_environments
    from runs.lifecycle import transition_many
    from runs.models import Run
    from runs.statuses import RunStatus
    from runs.triggering import BatchItem, batch_trigger

    call_command("migrate", verbosity=0)
    dev = {e.slug: e for e in ensure_default_environments()}["dev"]
    Run.objects.filter(environment=dev).delete()
    register_tasks(
        dev, [TaskSpec(slug="bench-live", module="bench.tasks", function="f")]
    )
    _, runs, _ = batch_trigger(
        dev, [BatchItem(task_identifier="bench-live", payload={}) for _ in range(pool)]
    )
    ids = [r.pk for r in runs]
    transition_many(ids, RunStatus.DEQUEUED)
    transition_many(ids, RunStatus.EXECUTING)
    user, _ = get_user_model().objects.get_or_create(
        username="bench-live", defaults={"is_superuser": True, "is_staff": True}
    )
    session = SessionStore()
    session["_auth_user_id"] = str(user.pk)
    session["_auth_user_backend"] = "django.contrib.auth.backends.ModelBackend"
    session["_auth_user_hash"] = user.get_session_auth_hash()
    session.create()
    return ids, session.session_key


def produce(
    ids: list[int], rate: int, seconds: float, publish=None
) -> list[tuple[str, str, float]]:
    """Commit `rate` transitions per second for `seconds`; returns (run, version, commit
    time). `publish(run_ids)` is the naive design's producer-side send."""
    from runs.lifecycle import transition_many
    from runs.models import Run
    from runs.statuses import RunStatus

    fids = dict(Run.objects.filter(pk__in=ids).values_list("pk", "friendly_id"))
    status = dict(Run.objects.filter(pk__in=ids).values_list("pk", "status"))
    produced: list[tuple[str, str, float]] = []
    start = time.monotonic()
    done = 0
    turn = 0
    while (elapsed := time.monotonic() - start) < seconds:
        due = int(rate * elapsed) - done
        if due <= 0:
            time.sleep(0.002)
            continue
        chosen = [ids[(turn + i) % len(ids)] for i in range(min(due, len(ids)))]
        turn += len(chosen)
        groups = {  # decided before moving any: each chosen run moves once
            target: [pk for pk in chosen if status[pk] != target]
            for target in (RunStatus.WAITING, RunStatus.EXECUTING)
        }
        for target, batch in groups.items():
            if not batch:
                continue
            moved = transition_many(batch, target)
            committed = time.time()
            if publish is not None:
                publish(moved)
            versions = dict(
                Run.objects.filter(pk__in=moved).values_list("pk", "updated_at")
            )
            for pk in moved:
                status[pk] = target
                produced.append((fids[pk], versions[pk].isoformat(), committed))
        done += len(chosen)
    return produced


def measure(produced, logs) -> dict:
    by_run: dict[str, list[tuple[str, float]]] = {}
    for fid, version, committed in produced:
        by_run.setdefault(fid, []).append((version, committed))
    latencies: list[float] = []
    delivered = total = final_ok = final_total = 0
    for log in logs:
        seen: dict[str, list[tuple[str, float]]] = {}
        for received, fid, version in log:
            seen.setdefault(fid, []).append((version, received))
        for fid, transitions in by_run.items():
            if fid not in seen:
                continue  # not on this client's page (its snapshot did not show it)
            got = sorted(seen[fid])  # by version (ISO timestamps sort)
            versions = [v for v, _ in got]
            # earliest reception of this version or a newer one
            best_after = [0.0] * len(got)
            running = float("inf")
            for i in range(len(got) - 1, -1, -1):
                running = min(running, got[i][1])
                best_after[i] = running
            for version, committed in transitions:
                total += 1
                i = bisect.bisect_left(versions, version)
                if i < len(got):
                    delivered += 1
                    latencies.append(max(0.0, best_after[i] - committed))
            final_total += 1
            final_ok += bool(versions) and versions[-1] == transitions[-1][0]
    latencies.sort()

    def pct(p: float) -> float:
        return (
            latencies[min(len(latencies) - 1, int(p * len(latencies)))] * 1000
            if latencies
            else float("nan")
        )

    return {
        "p50": pct(0.50),
        "p99": pct(0.99),
        "max": latencies[-1] * 1000 if latencies else float("nan"),
        "delivered": delivered / total if total else 0.0,
        "final": final_ok / final_total if final_total else 0.0,
    }


SERVER_LOG = "/tmp/rw_bench_live_server.log"  # daphne's warnings and errors


def server_command(server: str, port: int, app: str) -> list[str]:
    if server == "uvicorn":
        return [
            *(sys.executable, "-m", "uvicorn", "--host", "127.0.0.1", "--port"),
            *(str(port), "--loop", "uvloop", "--http", "httptools"),
            *("--ws", "websockets-sansio", "--lifespan", "off", "--no-access-log"),
            app,
        ]
    return [sys.executable, "-m", "daphne", "-b", "127.0.0.1", "-p", str(port), app]


def run_case(args, ids, session_key, clients: int, rate: int) -> dict:
    app = (
        "dashboard.asgi:application"
        if args.design == "relay"
        else "bench.live_naive:application"
    )
    server = subprocess.Popen(
        server_command(args.server, args.port, app),
        cwd=ROOT,
        # persistent connections: a websocket handshake is two or three queries
        env={**os.environ, "DB_CONN_MAX_AGE": os.environ.get("DB_CONN_MAX_AGE", "300")},
        stdout=subprocess.DEVNULL,
        stderr=open(SERVER_LOG, "w"),  # noqa: SIM115 (the server's lifetime)
    )
    try:
        _wait_for_port(args.port)
        url = f"ws://127.0.0.1:{args.port}/ws/env/dev/runs/"
        headers = {
            "Origin": f"http://127.0.0.1:{args.port}",
            "Cookie": f"sessionid={session_key}",
        }
        print(f"  extensions negotiated: {negotiated_extensions(url, headers)}")
        ctx = multiprocessing.get_context("spawn")
        ready = ctx.Value("i", 0)
        stop = ctx.Value("b", 0)
        procs, outputs = [], []
        per_proc = [
            clients // args.client_procs + (i < clients % args.client_procs)
            for i in range(args.client_procs)
        ]
        for i, count in enumerate(per_proc):
            out = f"/tmp/rw_bench_live_{os.getpid()}_{i}.json"
            outputs.append(out)
            proc = ctx.Process(
                target=client_process,
                args=(
                    url,
                    headers,
                    count,
                    args.connect_rate / args.client_procs,
                    ready,
                    stop,
                    out,
                ),
            )
            proc.start()
            procs.append(proc)
        try:
            return _measure_case(args, ids, clients, rate, server, ready, stop, outputs)
        finally:
            stop.value = 1
            for proc in procs:
                proc.join(60)
                if proc.is_alive():  # a failed case must not leave clients behind
                    proc.terminate()
    finally:
        server.terminate()
        server.wait(10)


def _measure_case(args, ids, clients, rate, server, ready, stop, outputs) -> dict:
    started = time.monotonic()
    while ready.value < clients:
        if time.monotonic() - started > 300 or server.poll() is not None:
            raise RuntimeError(f"only {ready.value}/{clients} clients connected")
        time.sleep(0.1)
    print(f"  {clients} clients connected in {time.monotonic() - started:.1f} s")
    time.sleep(1.0)  # let snapshots settle
    publish = None
    if args.design == "naive":
        from bench.live_naive import publish_rows as publish
    produced = produce(ids, rate, args.seconds, publish)
    time.sleep(args.drain)
    stop.value = 1
    for proc in multiprocessing.active_children():
        proc.join(60)
    logs = []
    for out in outputs:
        logs.extend(json.loads(Path(out).read_text()))
        Path(out).unlink()
    result = measure(produced, logs)
    result["transitions"] = len(produced)
    return result


def _wait_for_port(port: int) -> None:
    import socket

    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        with socket.socket() as s:
            if s.connect_ex(("127.0.0.1", port)) == 0:
                return
        time.sleep(0.1)
    raise RuntimeError("daphne did not start")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--clients", default="100,500,1000")
    parser.add_argument("--rates", default="100,1000")
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument("--drain", type=float, default=3.0)
    parser.add_argument("--pool", type=int, default=25)
    parser.add_argument("--port", type=int, default=8150)
    parser.add_argument("--client-procs", type=int, default=2)
    parser.add_argument(
        "--connect-rate", type=float, default=40.0, help="new websockets per second"
    )
    parser.add_argument("--design", choices=["relay", "naive"], default="relay")
    parser.add_argument(
        "--server",
        choices=["daphne", "uvicorn"],
        default="daphne",
        help="the ASGI server of the one server process (uvicorn: websockets-sansio)",
    )
    args = parser.parse_args()
    ids, session_key = setup(args.pool)
    from django.conf import settings

    print(
        f"design={args.design} server={args.server} database={settings.DATABASES['default']['ENGINE'].rsplit('.', 1)[-1]} "
        f"redis={'yes' if settings.REDIS_URL else 'no'} pool={args.pool} seconds={args.seconds}"
    )
    print(
        f"{'clients':>7} {'rate/s':>6} {'transitions':>11} {'p50 ms':>8} {'p99 ms':>8} {'max ms':>8} {'delivered':>9} {'final':>6}"
    )
    for clients in [int(c) for c in args.clients.split(",")]:
        for rate in [int(r) for r in args.rates.split(",")]:
            r = run_case(args, ids, session_key, clients, rate)
            print(
                f"{clients:>7} {rate:>6} {r['transitions']:>11} {r['p50']:>8.1f} {r['p99']:>8.1f} "
                f"{r['max']:>8.1f} {r['delivered']:>9.2%} {r['final']:>6.1%}",
                flush=True,
            )


if __name__ == "__main__":
    main()
