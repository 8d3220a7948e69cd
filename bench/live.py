"""Live feed benchmark: N websocket clients watch the dev runs list while R run
transitions per second are committed; prints commit→client latency and how much of
what changed reached every client.

    createdb -h 127.0.0.1 -U postgres rw_bench_live
    DATABASE_URL=postgresql://postgres@127.0.0.1:5432/rw_bench_live \\
    REDIS_URL=redis://127.0.0.1:6379/3 .venv/bin/python bench/live.py \\
        [--clients 100,500,1000] [--rates 100,1000] [--seconds 10] [--pool 25] \\
        [--design relay|naive] [--server daphne|daphne-asyncio|uvicorn]

One server process serves `dashboard.asgi` (design "relay", the product) or
`bench.live_naive` (design "naive": a Redis channel-layer group_send of the rendered
row per change, for comparison): daphne on uvloop as the README runs it in production
(`python -m dashboard.server`, the default), daphne on asyncio's loop, or uvicorn. The
clients (two processes of minimal websocket clients, see below) acknowledge messages
like static/js/app.js does. `--pool` runs cycle EXECUTING ↔ WAITING, round robin,
committed in small batches with `transition_many`. With the default pool of 25 (one
page) every transition is on a row every client shows: the worst case. With a larger
pool only the 25 newest runs are on the page, and only transitions on runs a client
shows count.

A transition counts as delivered to a client when that client receives the run's row
in that state or a newer one (coalescing skips intermediate states by design); its
latency is the time from its commit to that message's arrival at the client's socket
("p99 read": to the client process reading it). "final" is the fraction of
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
import socket
import struct
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "dashboard.settings")
os.environ.setdefault("SECRET_KEY", "bench")

ACK = re.compile(rb'<div id="live-state"[^>]*? data-seq="(\d+)" data-ack')


# --- clients (a separate process each) ---------------------------------------------
#
# The clients share the two cores with the server, so they are as cheap as a client
# that still receives and checks every message can be: a minimal websocket client on
# a non-blocking socket (handshake, unmasked server frames, pings, masked acks), frames
# cut out of what the socket delivered with one copy each, and one pass over each
# message for the rows it carries (each row's id and version is logged). About 20 µs
# per 20 KB message.
#
# A message's arrival is the kernel's receive timestamp (SO_TIMESTAMPNS) of the read
# that completed it: when its last byte reached the client's socket. Browsers run on
# other machines; here the clients compete for the same two cores as the server and
# can read late, which is the clients' delay, not the server's. The time the client
# process handled the message is logged too, and reported as "p99 read".

ROW_START = b'<tr id="run-'
VERSION = b' data-updated="'
SO_TIMESTAMPNS = 35  # Linux; its control message has the same number
RECV_BYTES = 256 * 1024


def rows_of(message: bytes) -> list[tuple[bytes, bytes]]:
    """(friendly id, data-updated) of every run row in a message, in order."""
    found = []
    for piece in message.split(ROW_START)[1:]:
        at = piece.find(VERSION, 0, 400)  # among the row's first attributes
        if at < 0:
            continue
        at += len(VERSION)
        found.append((piece[: piece.index(b'"')], piece[at : piece.index(b'"', at)]))
    return found


def kernel_time(ancillary: list) -> float | None:
    for level, kind, data in ancillary:
        if level == socket.SOL_SOCKET and kind == SO_TIMESTAMPNS and len(data) >= 16:
            seconds, nanoseconds = struct.unpack("qq", data[:16])
            return seconds + nanoseconds / 1e9
    return None


class Client:
    def __init__(self, sock: socket.socket, log: list, ready) -> None:
        self.sock = sock
        self.log = log
        self.ready = ready
        self.pending = b""  # the start of a frame not yet complete
        self.parts: list[bytes] = []
        self.open = False
        self.messages = 0
        self.loop = asyncio.get_running_loop()
        self.closed = self.loop.create_future()

    def start(self, request: bytes) -> None:
        self.sock.setsockopt(socket.SOL_SOCKET, SO_TIMESTAMPNS, 1)
        self.sock.sendall(request)  # a few hundred bytes into an empty buffer
        self.loop.add_reader(self.sock.fileno(), self._readable)

    def close(self) -> None:
        if not self.closed.done():
            self.loop.remove_reader(self.sock.fileno())
            self.sock.close()
            self.closed.set_result(self.messages)

    def _readable(self) -> None:
        try:
            data, ancillary, _, _ = self.sock.recvmsg(RECV_BYTES, 64)
        except BlockingIOError:
            return
        except OSError:
            data = b""
        if not data:
            self.close()
            return
        handled = time.time()
        arrived = kernel_time(ancillary) or handled
        if self.pending:
            data = self.pending + data
        if not self.open:
            end = data.find(b"\r\n\r\n")
            if end < 0:
                self.pending = data
                return
            if b" 101 " not in data[: data.find(b"\r\n")]:
                self.close()  # refused: the caller retries
                return
            data = data[end + 4 :]
            self.open = True
        self.pending = data[self._frames(data, (arrived, handled)) :]

    def _frames(self, data: bytes, times: tuple[float, float]) -> int:
        """Handle the complete frames in `data`; returns where the incomplete one
        starts."""
        at, size = 0, len(data)
        while size - at >= 2:
            first, length = data[at], data[at + 1] & 0x7F
            start = at + 2
            if length == 126:
                if size - at < 4:
                    break
                length, start = int.from_bytes(data[at + 2 : at + 4], "big"), at + 4
            elif length == 127:
                if size - at < 10:
                    break
                length, start = int.from_bytes(data[at + 2 : at + 10], "big"), at + 10
            if size < start + length:
                break
            payload = data[start : start + length]
            at = start + length
            opcode = first & 0x0F
            if opcode in (0, 1, 2):
                self.parts.append(payload)
                if first & 0x80:  # FIN
                    parts, self.parts = self.parts, []
                    message = parts[0] if len(parts) == 1 else b"".join(parts)
                    self._message(message, times)
            elif opcode == 9:  # ping
                self._send(0xA, payload)
            elif opcode == 8:  # close
                self.close()
                return size
        return at

    def _message(self, message: bytes, times: tuple[float, float]) -> None:
        arrived, handled = times
        log = self.log
        for fid, updated in rows_of(message):
            log.append((arrived, handled, fid, updated))
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
        try:
            self.sock.send(header + mask + masked)  # tiny: fits the socket buffer
        except OSError:
            self.close()


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
        sock = socket.socket()
        sock.setblocking(False)
        try:
            await loop.sock_connect(sock, (parts.hostname, parts.port))
            client = Client(sock, log, ready)
            client.start(_handshake(parts.hostname, parts.port, parts.path, headers))
        except OSError:
            sock.close()
            client = None
        if client is not None:
            ended = asyncio.ensure_future(asyncio.shield(client.closed))
            stopping = asyncio.ensure_future(stop.wait())
            await asyncio.wait({ended, stopping}, return_when=asyncio.FIRST_COMPLETED)
            if stop.is_set():
                client.close()
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
            [
                (arrived, handled, fid.decode(), version.decode())
                for arrived, handled, fid, version in log
            ]
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
    """Latency from commit to arrival (and to the client's reading it) of every
    transition on a row each client shows, how many arrived, and whether each client's
    last row of each run is the run's final state."""
    by_run: dict[str, list[tuple[str, float]]] = {}
    for fid, version, committed in produced:
        by_run.setdefault(fid, []).append((version, committed))
    arrival: list[float] = []
    reading: list[float] = []
    delivered = total = final_ok = final_total = 0
    for log in logs:
        seen: dict[str, list[tuple[str, float, float]]] = {}
        for arrived, handled, fid, version in log:
            seen.setdefault(fid, []).append((version, arrived, handled))
        for fid, transitions in by_run.items():
            if fid not in seen:
                continue  # not on this client's page (its snapshot did not show it)
            got = sorted(seen[fid])  # by version (ISO timestamps sort)
            versions = [v for v, _, _ in got]
            first_arrived = _earliest_from(got, 1)  # of this version or a newer one
            first_handled = _earliest_from(got, 2)
            for version, committed in transitions:
                total += 1
                i = bisect.bisect_left(versions, version)
                if i < len(got):
                    delivered += 1
                    arrival.append(max(0.0, first_arrived[i] - committed))
                    reading.append(max(0.0, first_handled[i] - committed))
            final_total += 1
            final_ok += bool(versions) and versions[-1] == transitions[-1][0]
    arrival.sort()
    reading.sort()
    return {
        "p50": _percentile(arrival, 0.50),
        "p99": _percentile(arrival, 0.99),
        "max": _percentile(arrival, 1.0),
        "p99 read": _percentile(reading, 0.99),
        "delivered": delivered / total if total else 0.0,
        "final": final_ok / final_total if final_total else 0.0,
    }


def _earliest_from(got: list[tuple], index: int) -> list[float]:
    """For each position of a version-sorted list, the earliest time at `index` among
    it and the entries after it."""
    earliest = [0.0] * len(got)
    running = float("inf")
    for i in range(len(got) - 1, -1, -1):
        running = min(running, got[i][index])
        earliest[i] = running
    return earliest


def _percentile(ordered: list[float], p: float) -> float:
    if not ordered:
        return float("nan")
    return ordered[min(len(ordered) - 1, int(p * len(ordered)))] * 1000


SERVER_LOG = "/tmp/rw_bench_live_server.log"  # the server's warnings and errors


def server_command(server: str, port: int, app: str) -> list[str]:
    if server == "uvicorn":
        return [
            *(sys.executable, "-m", "uvicorn", "--host", "127.0.0.1", "--port"),
            *(str(port), "--loop", "uvloop", "--http", "httptools"),
            *("--ws", "websockets-sansio", "--lifespan", "off", "--no-access-log"),
            app,
        ]
    # daphne as the README runs it in production (on uvloop), or on asyncio's own loop
    launcher = ("-m", "dashboard.server") if server == "daphne" else ("-m", "daphne")
    return [sys.executable, *launcher, "-b", "127.0.0.1", "-p", str(port), app]


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
        _wait_for_port(args.port, args.server)
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


def _wait_for_port(port: int, server: str) -> None:
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        with socket.socket() as s:
            if s.connect_ex(("127.0.0.1", port)) == 0:
                return
        time.sleep(0.1)
    raise RuntimeError(f"{server} did not start (see {SERVER_LOG})")


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
        choices=["daphne", "daphne-asyncio", "uvicorn"],
        default="daphne",
        help="the one server process: daphne on uvloop (python -m dashboard.server), "
        "daphne on asyncio's loop, or uvicorn (websockets-sansio)",
    )
    args = parser.parse_args()
    ids, session_key = setup(args.pool)
    from django.conf import settings

    print(
        f"design={args.design} server={args.server} database={settings.DATABASES['default']['ENGINE'].rsplit('.', 1)[-1]} "
        f"redis={'yes' if settings.REDIS_URL else 'no'} pool={args.pool} seconds={args.seconds}"
    )
    print(
        f"{'clients':>7} {'rate/s':>6} {'transitions':>11} {'p50 ms':>8} {'p99 ms':>8} "
        f"{'max ms':>8} {'p99 read':>8} {'delivered':>9} {'final':>6}"
    )
    for clients in [int(c) for c in args.clients.split(",")]:
        for rate in [int(r) for r in args.rates.split(",")]:
            r = run_case(args, ids, session_key, clients, rate)
            print(
                f"{clients:>7} {rate:>6} {r['transitions']:>11} {r['p50']:>8.1f} {r['p99']:>8.1f} "
                f"{r['max']:>8.1f} {r['p99 read']:>8.1f} {r['delivered']:>9.2%} {r['final']:>6.1%}",
                flush=True,
            )


if __name__ == "__main__":
    main()
