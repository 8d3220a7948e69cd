"""runs.prepared: statements run with prepare=True really are prepared on the server
(Django's own cursors bind client-side and never prepare)."""

from __future__ import annotations

import pytest
from django.db import connection

from runs.engine import pgsql
from runs.prepared import prepared_cursor

pytestmark = [pytest.mark.postgres, pytest.mark.django_db]

PROBE = "SELECT %(n)s::int + 1 AS prepared_probe"


def _prepared_statements() -> list[str]:
    with connection.cursor() as cursor:
        cursor.execute("SELECT statement FROM pg_prepared_statements")
        return [row[0] for row in cursor.fetchall()]


def test_a_statement_run_with_prepare_is_prepared_once_per_connection():
    with prepared_cursor() as cursor:
        for n in (1, 2):
            cursor.execute(PROBE, {"n": n}, prepare=True)
            assert cursor.fetchone() == (n + 1,)
    probes = [s for s in _prepared_statements() if "prepared_probe" in s]
    assert len(probes) == 1, probes


def test_the_engine_statements_go_through_prepared_statements():
    assert pgsql._execute(PROBE, {"n": 41}) == [(42,)]
    assert any("prepared_probe" in s for s in _prepared_statements())


def test_djangos_own_cursors_still_prepare_nothing():
    with connection.cursor() as cursor:
        cursor.execute("SELECT 1 AS client_side_probe")
    assert not any("client_side_probe" in s for s in _prepared_statements())
