"""The websocket messages of one flush tick, assembled once per distinct content."""

from __future__ import annotations

from realtime.coalesce import Reader, assemble
from realtime.fragments import live_state
from realtime.groups import Group


class Frames:
    """Members of a group that are in step (same cursor, no snapshot of their own)
    get the same ASGI message, assembled once: a thousand tabs on one list cost one
    assembly per tick and a thousand sends of an already-built string. Only the
    acknowledgement request and the page's watch number can differ between such
    members, and they are part of the key. Objects whose ids are in keys stay
    referenced until the tick ends, so their ids cannot be reused meanwhile."""

    def __init__(self, state: str, sequence: int, title: str) -> None:
        self.state, self.sequence, self.title = state, sequence, title
        self._bodies: dict[tuple, tuple[str, int]] = {}
        self._messages: dict[tuple, tuple[dict, int]] = {}
        self._kept: list = []
        self.built = 0

    def get(self, group: Group, reader: Reader, nonce: int) -> tuple[dict, int]:
        """The message for `reader`, and the outbox version it brings the reader to."""
        private = reader.private
        body_key = (id(group), reader.cursor, id(private))
        key = (*body_key, reader.asks_ack, nonce)
        found = self._messages.get(key)
        if found is None:
            body = self._bodies.get(body_key)
            if body is None:
                fragments = [*(private or ()), *group.outbox.since(reader.cursor)]
                text = ascii_html(assemble(fragments))
                body = self._bodies[body_key] = (text, group.outbox.version)
                self._kept.append((group, private))
            state = live_state(
                self.state, self.sequence, self.title, ack=reader.asks_ack, watch=nonce
            )
            message = {"type": "websocket.send", "text": body[0] + ascii_html(state)}
            found = self._messages[key] = (message, body[1])
            self.built += 1
        return found


def ascii_html(text: str) -> str:
    """The same HTML in ASCII: other characters become character references (the
    fragments have no <script> or <style>, where references are not decoded). The
    server encodes every message to UTF-8 per connection; an ASCII string encodes
    with a copy, one with a single "…" in 20 KB with a character-by-character pass."""
    if text.isascii():
        return text
    return text.encode("ascii", "xmlcharrefreplace").decode("ascii")
