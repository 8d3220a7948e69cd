"""Set-based SQL helpers: a whole list of values travels as ONE bound parameter
(a PostgreSQL array, a JSON array on SQLite), so a chunk of 5,000 ids costs one
parameter to adapt instead of 5,000, and the statement text stays the same size."""

from __future__ import annotations

import json
from collections.abc import Iterable

from django.db import connection


def in_list(column: str) -> str:
    """SQL for "`column` is one of the values of the next parameter" (see list_param)."""
    if connection.vendor == "postgresql":
        return f"{column} = ANY(%s)"
    return f"{column} IN (SELECT value FROM json_each(%s))"


def list_param(values: Iterable[int | str]) -> list | str:
    """The parameter that goes with in_list()."""
    items = list(values)
    return items if connection.vendor == "postgresql" else json.dumps(items)


def values_of(sql_type: str) -> str:
    """A FROM item yielding one row per value of the next parameter (a list_param),
    in column `value`; `sql_type` is the PostgreSQL element type (e.g. "bigint")."""
    if connection.vendor == "postgresql":
        return f"unnest(CAST(%s AS {sql_type}[])) AS v(value)"
    return "json_each(%s)"


def for_update() -> str:
    """Row locks where the database has them (SQLite locks the whole file on write)."""
    return " FOR UPDATE" if connection.vendor == "postgresql" else ""
