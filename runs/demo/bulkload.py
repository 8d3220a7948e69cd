"""Loading many rows fast: COPY on PostgreSQL, one executemany on SQLite.

Rows are dicts of the columns that vary; every other column of the model gets its
field default (computed once), so a model gaining a column does not break loading.
Ids are taken up front (a block of the sequence on PostgreSQL, max(id)+1… under the
write lock on SQLite) so that dependent rows can point at them.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable
from typing import Any

from django.db import connection
from django.db.models import JSONField, Max, Model
from django.db.models.fields import DateTimeField


def take_ids(model: type[Model], count: int) -> list[int]:
    """`count` fresh primary keys for `model` (call inside the loading transaction)."""
    table = model._meta.db_table
    with connection.cursor() as cursor:
        if connection.vendor == "postgresql":
            cursor.execute(
                "SELECT nextval(pg_get_serial_sequence(%s, 'id')) "
                "FROM generate_series(1, %s)",
                [table, count],
            )
            return [row[0] for row in cursor.fetchall()]
    first = (model.objects.aggregate(top=Max("id"))["top"] or 0) + 1
    return list(range(first, first + count))


class Loader:
    """Writes rows of one model; `load(rows)` inserts them in one statement. Without
    `explicit_ids` the database numbers the rows."""

    def __init__(self, model: type[Model], *, explicit_ids: bool = False) -> None:
        self.model = model
        self.fields = [
            f for f in model._meta.concrete_fields if explicit_ids or not f.primary_key
        ]
        self.columns = [f.column for f in self.fields]
        self.convert: list[Callable[[Any], Any]] = [
            self._converter(f) for f in self.fields
        ]
        self.defaults = [
            None if f.primary_key else conv(f.get_default())
            for f, conv in zip(self.fields, self.convert, strict=True)
        ]
        self.index = {f.attname: i for i, f in enumerate(self.fields)}
        self.index.update({f.name: i for i, f in enumerate(self.fields)})

    def _converter(self, field) -> Callable[[Any], Any]:
        if isinstance(field, JSONField):
            return lambda v: None if v is None else json.dumps(v, separators=(",", ":"))
        if isinstance(field, DateTimeField) and connection.vendor != "postgresql":
            return lambda v: connection.ops.adapt_datetimefield_value(v)
        return lambda v: v

    def row(self, values: dict[str, Any]) -> list[Any]:
        row = list(self.defaults)
        for name, value in values.items():
            i = self.index[name]
            row[i] = self.convert[i](value)
        return row

    def load(self, rows: Iterable[dict[str, Any]]) -> int:
        table = connection.ops.quote_name(self.model._meta.db_table)
        columns = ", ".join(connection.ops.quote_name(c) for c in self.columns)
        count = 0
        with connection.cursor() as cursor:
            if connection.vendor == "postgresql":
                with cursor.cursor.copy(f"COPY {table} ({columns}) FROM STDIN") as copy:
                    for values in rows:
                        copy.write_row(self.row(values))
                        count += 1
                return count
            data = [self.row(values) for values in rows]
            marks = ", ".join(["%s"] * len(self.columns))
            cursor.executemany(
                f"INSERT INTO {table} ({columns}) VALUES ({marks})", data
            )
            return len(data)
