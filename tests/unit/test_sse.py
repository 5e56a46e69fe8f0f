from __future__ import annotations

import random

from daemon.providers.sse import SSEDecoder


def test_events_split_across_reads_and_batched_per_read() -> None:
    decoder = SSEDecoder()
    assert decoder.feed(b'data: {"a": 1}\n\ndata: {"b"') == [(None, b'{"a": 1}')]
    assert decoder.feed(b": 2}\n\nevent: ping\r\ndata: x\r\n\r\ndata: [DONE]\n\n") == [
        (None, b'{"b": 2}'),
        ("ping", b"x"),
        (None, b"[DONE]"),
    ]


def test_comments_multiline_data_and_unterminated_end() -> None:
    decoder = SSEDecoder()
    assert decoder.feed(b": keep-alive\n\ndata: one\ndata: two\n\n") == [(None, b"one\ntwo")]
    assert decoder.feed(b"data: tail") == []
    assert decoder.close() == [(None, b"tail")]


def test_any_split_of_mixed_events_decodes_the_same() -> None:
    wire = (
        b'data: {"a": 1}\n\n: keep-alive\n\nevent: ping\ndata: x\ndata: y\n\ndata: z\r\n\r\n'
        b'data:{"b":2}\n\n\n\ndata: [DONE]\n\ndata: tail'
    )
    expected = [(None, b'{"a": 1}'), ("ping", b"x\ny"), (None, b"z"), (None, b'{"b":2}'), (None, b"[DONE]")]
    rng = random.Random(7)
    for _ in range(300):
        decoder, events, pos = SSEDecoder(), [], 0
        while pos < len(wire):
            step = rng.randint(1, 12)
            events += decoder.feed(wire[pos : pos + step])
            pos += step
        assert events == expected
        assert decoder.close() == [(None, b"tail")]
