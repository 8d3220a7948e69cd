"""Running a test's work in several threads at once, as racing clients would."""

from __future__ import annotations

import threading
from collections.abc import Callable

from django.db import connection


def run_concurrently(work: Callable[[int], object], count: int, timeout: float = 30):
    """Call `work(i)` for i in range(count), each in its own thread with its own
    database connection (closed when it ends), and wait for all of them. Returns the
    exceptions raised, so the test can assert there were none."""
    errors: list[BaseException] = []

    def run(i: int) -> None:
        try:
            work(i)
        except BaseException as exc:  # reported to the test
            errors.append(exc)
        finally:
            connection.close()

    threads = [threading.Thread(target=run, args=(i,)) for i in range(count)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout)
    return errors
