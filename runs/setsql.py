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


def rows_of(columns: list[tuple[str, str]]) -> str:
    """A FROM item yielding the rows passed by rows_param(), with these (name,
    PostgreSQL type) columns: `unnest` of one array per column on PostgreSQL, a JSON
    array of rows on SQLite."""
    names = ", ".join(name for name, _ in columns)
    if connection.vendor == "postgresql":
        arrays = ", ".join(f"CAST(%s AS {sql_type}[])" for _, sql_type in columns)
        return f"unnest({arrays}) AS v({names})"
    picks = ", ".join(
        f"json_extract(value, '$[{i}]') AS {name}"
        for i, (name, _) in enumerate(columns)
    )
    return f"(SELECT {picks} FROM json_each(%s)) AS v"


def rows_param(rows: list[tuple], width: int) -> list:
    """The parameters that go with rows_of() for `rows` of `width` values each."""
    if connection.vendor == "postgresql":
        return [[row[i] for row in rows] for i in range(width)]
    return [json.dumps([list(row) for row in rows])]


def for_update() -> str:
    """Row locks where the database has them (SQLite locks the whole file on write)."""
    return " FOR UPDATE" if connection.vendor == "postgresql" else ""
