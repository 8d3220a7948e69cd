"""A partial rendered by the template engine once per shape of its values, then
filled in with plain string joins: for rows, which a page renders up to 100 of.

The partial must print its values only as plain lookups (`{{ row.key }}`, no filters)
and test them only for truth (`{% if row.key %}`). Its output then depends on each
value only through the value itself where printed, and through its truth where
tested. So the engine renders it once per shape (which values are true, and the
false ones as they are) with a marker printed in place of every true value; the
output, cut at the markers, is kept as literal pieces and the keys between them.
A row is its values put between the pieces, escaped as the engine escapes them.
tests/dashboard/test_rows.py checks the output is the engine's.
"""

from __future__ import annotations

from collections.abc import Hashable
from typing import Any

from django.conf import settings
from django.template import Context
from django.template.loader import get_template
from django.utils.html import conditional_escape
from django.utils.safestring import SafeData, SafeString

MARK = "\x00"  # never in a template's own text, and values are put in after the cut


class PrerenderedPartial:
    def __init__(self, name: str, key: str, constants: dict[str, Any]) -> None:
        """`name`: the partial; `key`: the name of its values' dict in its context
        (`row`); `constants`: the rest of its context, the same for every render."""
        self.name, self.key, self.constants = name, key, constants
        self._shapes: dict[Hashable, tuple[list[str], list[str]]] = {}

    def render(self, values: dict[str, Any]) -> SafeString:
        if settings.DEBUG:  # templates edited while the server runs show at once
            return SafeString(self.engine_render(values))
        shape = (
            tuple(values),
            *(True if value else value for value in values.values()),
        )
        found = self._shapes.get(shape)
        if found is None:
            found = self._shapes[shape] = self._cut(values)
        pieces, keys = found
        html = [pieces[0]]
        for key, piece in zip(keys, pieces[1:], strict=True):
            value = values[key]
            if not isinstance(value, SafeData):
                value = conditional_escape(value)
            html.append(value)
            html.append(piece)
        return SafeString("".join(html))

    def engine_render(self, values: dict[str, Any]) -> str:
        """What the engine renders for these values (the reference for `render`)."""
        context = {self.key: values, **self.constants}
        return get_template(self.name).template.render(Context(context))

    def _cut(self, values: dict[str, Any]) -> tuple[list[str], list[str]]:
        marked = {
            key: SafeString(f"{MARK}{key}{MARK}") if value else value
            for key, value in values.items()
        }
        parts = self.engine_render(marked).split(MARK)
        return parts[0::2], parts[1::2]
