"""daphne on uvloop: `python -m dashboard.server [daphne's options] dashboard.asgi:application`.

daphne creates its event loop when `daphne.server` is first imported, with asyncio's
default loop. This runs daphne's own command line (same options, same behaviour) after
making uvloop's loop the default. Twisted runs on any asyncio loop that offers
add_reader/add_writer, and every websocket message daphne sends registers and
unregisters a writer: uvloop does that, and the rest of the loop's bookkeeping, in C. Sending to 1,000 websockets, daphne spent
57–61 µs of user CPU per message on uvloop against 64–84 µs on asyncio's loop
(docs/benchmarks.md, Live feed). `manage.py serve` does the same (in manage.py: Django's
set-up already imports daphne.server, for the daphne app).
"""

from __future__ import annotations

import asyncio
import sys

import uvloop


def use_uvloop() -> None:
    """Make new asyncio loops uvloop's, before daphne creates its own."""
    if "daphne.server" in sys.modules:
        raise RuntimeError("daphne's loop exists already: choose uvloop before it")
    asyncio.set_event_loop_policy(uvloop.EventLoopPolicy())


def main() -> None:
    use_uvloop()
    print("dashboard.server: daphne on uvloop", file=sys.stderr, flush=True)
    from daphne.cli import CommandLineInterface

    CommandLineInterface.entrypoint()


if __name__ == "__main__":
    main()
