from __future__ import annotations

from realtime.coalesce import Fragment, Outbox, Reader, assemble
from realtime.frames import Frames
from realtime.groups import Group
from realtime.watches import Watch


def html(fragments):
    return [f.render() for f in fragments]


def test_the_latest_state_wins():
    outbox = Outbox()
    outbox.offer("run-1", Fragment("v0"))
    seen = outbox.version
    for version in range(1, 1001):
        outbox.offer("run-1", Fragment(f"v{version}"))
        outbox.offer("run-2", Fragment(f"w{version}"))
    assert html(outbox.since(seen)) == ["v1000", "w1000"]
    assert html(outbox.since(0)) == ["v1000", "w1000"]
    assert outbox.since(outbox.version) == []


def test_fragments_keep_their_first_offered_order():
    outbox = Outbox()
    outbox.offer("a", Fragment("a1"))
    outbox.offer("b", Fragment("b1"))
    outbox.offer("a", Fragment("a2"))
    assert html(outbox.since(0)) == ["a2", "b1"]


def test_an_insertion_updated_before_a_reader_gets_it_stays_an_insertion_for_that_reader():
    outbox = Outbox()
    before = outbox.version  # a tab that has not received the insertion yet
    outbox.offer(
        "run-9",
        Fragment(
            "<tr id=run-9>QUEUED</tr>", "afterbegin:#runs-body", table=True, insert=True
        ),
    )
    inserted = outbox.version  # a tab that has
    outbox.offer(
        "run-9", Fragment("<tr id=run-9>EXECUTING</tr>", "outerHTML:#run-9", table=True)
    )
    assert html(outbox.since(before)) == [
        '<tbody hx-swap-oob="afterbegin:#runs-body" data-live-unwrap>'
        "<tr id=run-9>EXECUTING</tr></tbody>"
    ]
    assert html(outbox.since(inserted)) == [
        '<tbody hx-swap-oob="outerHTML:#run-9" data-live-unwrap>'
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


def test_what_every_reader_received_is_forgotten_and_bounds_what_is_kept():
    outbox = Outbox(max_pending=10)
    for i in range(8):
        outbox.offer(f"run-{i}", Fragment(str(i)))
    outbox.prune(5)  # every reader has the first five
    assert len(outbox) == 3 and html(outbox.since(5)) == ["5", "6", "7"]
    for i in range(8, 16):
        outbox.offer(f"run-{i}", Fragment(str(i)))
    assert outbox.overflowing  # the hub then re-snapshots the readers furthest behind
    outbox.prune(12)
    assert not outbox.overflowing and len(outbox) == 4


def test_a_reader_that_does_not_acknowledge_is_throttled_not_buffered():
    outbox, reader = Outbox(), Reader(max_in_flight=2)
    outbox.offer("x", Fragment("1"))
    reader.took(outbox.version, sequence=1)
    reader.ack(1)  # the client speaks the ack protocol
    for sequence in range(2, 100):
        outbox.offer("x", Fragment(str(sequence)))
        if not reader.blocked:
            reader.took(outbox.version, sequence)
    assert reader.sent == 3  # messages 2 and 3 are unacknowledged: nothing more
    assert reader.has_news(outbox)
    assert html(outbox.since(reader.cursor)) == ["99"]  # one fragment, the latest
    reader.ack(3)
    assert not reader.blocked


def test_a_reader_that_never_acknowledges_is_not_throttled():
    reader = Reader(max_in_flight=2)
    for sequence in range(1, 10):
        reader.took(sequence, sequence)
    assert not reader.blocked and reader.in_flight == 0


def test_acknowledgements_out_of_range_are_ignored():
    reader = Reader()
    reader.ack(5)
    assert reader.acked is None
    reader.took(1, sequence=40)
    reader.ack(41)  # never sent
    assert reader.acked is None
    reader.ack(40)
    reader.ack(0)
    assert reader.acked == 40 and reader.in_flight == 0


def test_every_eighth_message_asks_for_an_acknowledgement():
    reader = Reader()
    asked = []
    for sequence in range(1, 17):
        asked.append(reader.asks_ack)
        reader.took(sequence, sequence)
    assert asked == ([False] * 7 + [True]) * 2


def test_readers_in_step_share_one_message_per_tick(dev):
    group = Group(Watch(dev, "/env/dev/"))
    row = Fragment("<tr id=run-1>Executing…</tr>", "outerHTML:#run-1", table=True)
    group.outbox.offer(("row", 1), row)
    one, two, joining = Reader(), Reader(), Reader()
    joining.start(group.outbox.version, [Fragment('<div id="snap">s</div>')])
    frames = Frames("open", 7, "")
    message, version = frames.get(group, one, 0)
    assert frames.get(group, two, 0)[0] is message  # shared, not rebuilt
    assert version == group.outbox.version
    assert "data-ack" not in message["text"] and 'data-seq="7"' in message["text"]
    # ASCII on the wire (the server encodes each send): "…" as a reference
    assert message["text"].isascii() and "Executing&#8230;" in message["text"]
    own = frames.get(group, joining, 0)[0]["text"]
    assert "snap" in own and "run-1" not in own  # its snapshot already has the row
    for _ in range(7):
        two.took(1, 1)
    asking = frames.get(group, two, 0)[0]["text"]
    assert 'data-seq="7" data-ack' in asking
    assert 'data-watch="3"' in frames.get(group, one, 3)[0]["text"]
    assert frames.built == 4
