from __future__ import annotations

from realtime.coalesce import Coalescer, Fragment, assemble


def html(fragments):
    return [f.render() for f in fragments]


def test_the_first_change_of_a_quiet_period_leaves_at_once():
    c = Coalescer(window=0.1)
    c.offer("run-1", Fragment("<tr id=run-1>a</tr>"))
    assert c.due_at() <= 0
    assert html(c.take(now=10.0)) == ["<tr id=run-1>a</tr>"]
    assert c.take(now=10.0) is None  # nothing pending


def test_the_latest_state_wins_within_a_window():
    c = Coalescer(window=0.1)
    c.offer("run-1", Fragment("v0"))
    c.take(now=10.0)
    for version in range(1, 1001):
        c.offer("run-1", Fragment(f"v{version}"))
        c.offer("run-2", Fragment(f"w{version}"))
    assert c.take(now=10.05) is None  # window not over: at most one message per window
    assert c.due_at() == 10.1
    assert html(c.take(now=10.1)) == ["v1000", "w1000"]


def test_fragments_keep_their_first_offered_order():
    c = Coalescer()
    c.offer("a", Fragment("a1"))
    c.offer("b", Fragment("b1"))
    c.offer("a", Fragment("a2"))
    assert html(c.take(now=1.0)) == ["a2", "b1"]


def test_an_insertion_updated_before_it_leaves_stays_an_insertion():
    c = Coalescer()
    c.offer(
        "run-9",
        Fragment(
            "<tr id=run-9>QUEUED</tr>", "afterbegin:#runs-body", table=True, insert=True
        ),
    )
    c.offer(
        "run-9", Fragment("<tr id=run-9>EXECUTING</tr>", "outerHTML:#run-9", table=True)
    )
    assert html(c.take(now=1.0)) == [
        '<tbody hx-swap-oob="afterbegin:#runs-body" data-live-unwrap>'
        "<tr id=run-9>EXECUTING</tr></tbody>"
    ]


def test_a_message_puts_table_fragments_first():
    message = assemble(
        [
            Fragment('<div id="pill">2</div>'),
            Fragment("<tr id=run-1></tr>", "outerHTML:#run-1", table=True),
            Fragment('<div id="live-state"></div>'),
            Fragment(
                "<tr id=run-2></tr>", "beforeend:#runs-body", table=True, insert=True
            ),
        ]
    )
    assert message == (
        '<tbody hx-swap-oob="outerHTML:#run-1" data-live-unwrap><tr id=run-1></tr></tbody>'
        '<tbody hx-swap-oob="beforeend:#runs-body" data-live-unwrap><tr id=run-2></tr></tbody>'
        '<div id="pill">2</div><div id="live-state"></div>'
    )


def test_the_buffer_is_bounded_and_overflow_asks_for_a_snapshot():
    c = Coalescer(max_pending=10)
    for i in range(11):
        c.offer(f"run-{i}", Fragment(str(i)))
    assert c.overflowed and len(c) == 0 and c.dropped == 11
    assert c.due_at() is None
    c.reset([("runs-body", Fragment("<tbody id=runs-body></tbody>"))])
    assert not c.overflowed
    assert html(c.take(now=1.0)) == ["<tbody id=runs-body></tbody>"]


def test_a_client_that_does_not_acknowledge_is_throttled_not_buffered():
    c = Coalescer(window=0.1, max_in_flight=2)
    c.offer("x", Fragment("1"))
    c.take(now=1.0)
    c.ack(1)  # the client speaks the ack protocol
    now = 1.0
    for i in range(2, 100):
        now += 0.1
        c.offer("x", Fragment(str(i)))
        c.take(now)
    assert c.sent == 3  # messages 2 and 3 are unacknowledged: nothing more leaves
    assert len(c) == 1  # and the pending state stays one fragment, the latest
    c.ack(3)
    assert html(c.take(now + 0.1)) == ["99"]


def test_acknowledgements_out_of_range_are_ignored():
    c = Coalescer()
    c.ack(5)
    assert c.acked is None
    c.offer("x", Fragment("1"))
    c.take(now=1.0)
    c.ack(1)
    c.ack(0)
    assert c.acked == 1 and c.in_flight == 0


def test_every_eighth_message_asks_for_an_acknowledgement():
    c = Coalescer(window=0.0)
    asked = []
    for i in range(16):
        c.offer("x", Fragment(str(i)))
        c.take(now=float(i))
        asked.append(c.wants_ack)
    assert asked == ([False] * 7 + [True]) * 2


def test_a_flush_tick_assembles_one_message_per_distinct_content():
    from realtime.hub import Frames

    row = Fragment("<tr id=run-1>Executing…</tr>", "outerHTML:#run-1", table=True)
    other = Fragment("<tr id=run-2>b</tr>", "outerHTML:#run-2", table=True)
    frames = Frames("open", 7, "")
    first = frames.get([row, other], ack=False)
    assert frames.get([row, other], ack=False) is first  # shared, not rebuilt
    asking = frames.get([row, other], ack=True)
    alone = frames.get([row], ack=False)
    assert frames.built == 3
    assert 'data-seq="7" data-ack' in asking["text"]
    assert "data-ack" not in first["text"] and "run-2" not in alone["text"]
    # ASCII on the wire (the server encodes each send): "…" as a reference
    assert first["text"].isascii() and "Executing&#8230;" in first["text"]


def test_acknowledgements_follow_the_sequence_numbers_the_hub_gives():
    c = Coalescer(window=0.1, max_in_flight=2)
    c.offer("x", Fragment("1"))
    c.take(now=1.0, sequence=40)
    c.ack(40)
    c.offer("x", Fragment("2"))
    c.take(now=2.0, sequence=41)
    c.offer("x", Fragment("3"))
    c.take(now=3.0, sequence=45)  # the connection had nothing during ticks 42-44
    c.offer("x", Fragment("4"))
    assert c.in_flight == 2 and c.take(now=4.0, sequence=46) is None
    c.ack(41)
    assert c.in_flight == 1
    assert [f.html for f in c.take(now=4.0, sequence=46)] == ["4"]
    c.ack(99)  # never sent: ignored
    assert c.acked == 41
