"""What wakes an idle worker: a self-pipe (in-process triggers, stop) and, on
PostgreSQL, LISTEN on the queue channel (runs queued by any other process)."""

from __future__ import annotations

import contextlib
import logging
import os

import psycopg
from django.db import connection

from runs.lifecycle import QUEUE_CHANNEL

logger = logging.getLogger("runwatch.worker")


class Wakeup:
    def __init__(self) -> None:
        self._read, self._write = os.pipe()
        os.set_blocking(self._read, False)
        os.set_blocking(self._write, False)

    def fileno(self) -> int:
        return self._read

    def set(self) -> None:
        # BlockingIOError: already signalled (pipe full); OSError: closed.
        with contextlib.suppress(BlockingIOError, OSError):
            os.write(self._write, b"!")

    def drain(self) -> None:
        try:
            while os.read(self._read, 4096):
                pass
        except (BlockingIOError, OSError):
            pass

    def close(self) -> None:
        for fd in (self._read, self._write):
            with contextlib.suppress(OSError):
                os.close(fd)


class QueueListener:
    """A dedicated autocommit connection that LISTENs for newly queued runs."""

    def __init__(self) -> None:
        params = connection.settings_dict
        self.conn = psycopg.connect(
            dbname=params["NAME"],
            user=params.get("USER") or None,
            password=params.get("PASSWORD") or None,
            host=params.get("HOST") or None,
            port=params.get("PORT") or None,
            autocommit=True,
        )
        self.conn.execute(f"LISTEN {QUEUE_CHANNEL}")

    def fileno(self) -> int:
        return self.conn.fileno()

    def drain(self) -> int:
        return sum(1 for _ in self.conn.notifies(timeout=0))

    def close(self) -> None:
        with contextlib.suppress(psycopg.Error):
            self.conn.close()


def connect_listener() -> QueueListener | None:
    try:
        return QueueListener()
    except psycopg.Error as exc:
        logger.warning("LISTEN connection failed, polling instead: %s", exc)
        return None
