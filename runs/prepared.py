"""Server-side prepared statements on Django's PostgreSQL connection.

Django binds parameters client-side (psycopg's ClientCursor) and connects with
psycopg's automatic preparation off (`prepare_threshold=None`, for transaction-pooling
proxies), so `execute(..., prepare=True)` through its cursors prepares nothing: every
run of a statement is parsed, analyzed and planned again, which for statements on
`runs_run` (thirty indexes) is a large share of their cost. `prepared_cursor` gives a
server-side binding cursor on the same connection, inside the caller's transaction,
with preparation switched on for statements executed with `prepare=True` alone.
Behind PgBouncer that takes PgBouncer ≥ 1.21 with `max_prepared_statements`.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

import psycopg
from django.db import connection

# psycopg prepares a statement once it ran this many times on a connection: never,
# in effect; only statements run with prepare=True are prepared.
PREPARE_EXPLICITLY_ONLY = 2**31 - 1


@contextmanager
def prepared_cursor() -> Iterator[psycopg.Cursor]:
    """A cursor whose `execute(sql, params, prepare=True)` runs a server-side prepared
    statement (prepared once per connection), with Django's error wrapping."""
    connection.ensure_connection()
    raw = connection.connection
    if raw.prepare_threshold is None:
        raw.prepare_threshold = PREPARE_EXPLICITLY_ONLY
    with connection.wrap_database_errors, psycopg.Cursor(raw) as cursor:
        yield cursor
