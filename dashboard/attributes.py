"""How the run page shows a log line's (or a status event's) structured attributes.

Short values go on the line as `key=value`. An error (a dict with a stack, as the
engine records a crash and tasks log exceptions) shows as `key=Name: message`, its
stack in a collapsed, pre-formatted block under the line. Any other value too long
or on several lines for the line (a traceback logged as a string, a big object) is
cut on the line and shown whole, pretty-printed, in such a block.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

INLINE_MAX = 160  # characters of a value shown on the line
ERROR_KEYS = ("name", "message", "stack")


@dataclass(frozen=True)
class Attribute:
    key: str
    text: str  # on the line
    block: str = ""  # the whole value, pre-formatted, collapsed under the line
    block_label: str = ""


def present_attributes(attributes: Any) -> list[Attribute]:
    if not isinstance(attributes, dict):
        return []
    return [_attribute(str(key), value) for key, value in attributes.items()]


def _attribute(key: str, value: Any) -> Attribute:
    if isinstance(value, dict) and isinstance(value.get("stack"), str):
        return _error(key, value)
    if isinstance(value, str):
        text, whole = value, value
    else:
        text = json.dumps(value, ensure_ascii=False, separators=(",", ":"))
        whole = json.dumps(value, ensure_ascii=False, indent=2)
    if "\n" not in text and len(text) <= INLINE_MAX:
        return Attribute(key, text)
    return Attribute(key, _cut(text), block=whole, block_label=f"{key} (whole value)")


def _error(key: str, error: dict) -> Attribute:
    name, message = error.get("name"), error.get("message")
    headline = ": ".join(str(part) for part in (name, message) if part) or "Error"
    extra = {k: v for k, v in error.items() if k not in ERROR_KEYS}
    if extra:
        headline += " " + json.dumps(extra, ensure_ascii=False, separators=(",", ":"))
    label = "Stack trace" if key == "error" else f"{key}: stack trace"
    return Attribute(key, _cut(headline), block=error["stack"], block_label=label)


def _cut(text: str) -> str:
    """The first line, at most INLINE_MAX characters, with … when there is more."""
    first = text.strip().split("\n", 1)[0]
    if len(first) > INLINE_MAX:
        first = first[:INLINE_MAX].rstrip()
    return first if first == text.strip() else f"{first} …"
