from __future__ import annotations

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
