"""Slow, idle, malformed and surplus clients (daemon/api/http_protocol.py), over raw sockets to a real
daemon: each is cut at its deadline with the OpenAI error shape where a request had begun, while
keep-alive clients and long streams are served as before. The profile's deadlines are short so
that these run fast; every socket has a timeout, so a deadline that never fires fails, not hangs."""

from __future__ import annotations

import json
import select
import signal
import socket
import time
from collections.abc import Iterator
from dataclasses import dataclass

import httpx
import pytest

from tests.daemon_process import DaemonProcess, fake_profile
from tests.fixtures.fake_openai import FakeOpenAI

HEADER_TIMEOUT = 1.0
BODY_TIMEOUT = 2.0
IDLE_TIMEOUT = 1.5
MARGIN = 2.5  # a busy 2-core machine runs other suites beside these
EARLY = 0.05  # the server's clock starts a moment before the client's (and timers round to 1 ms)
GIVE_UP = 10.0  # longer than every deadline + MARGIN: reaching it means the deadline never fired
CHAT = b"/v1/chat/completions"


def server_section(**settings: float) -> str:
    return "server:\n" + "".join(f"  {name}: {value}\n" for name, value in settings.items())


def start(daemon: DaemonProcess, upstream: FakeOpenAI, **settings: float) -> DaemonProcess:
    daemon.profile.write_text(fake_profile(upstream.base_url, extra=server_section(**settings)))
    return daemon.start()


@pytest.fixture(scope="module")
def slow_gateway(
    fake_upstream: FakeOpenAI, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[DaemonProcess]:
    folder = tmp_path_factory.mktemp("slow-clients")
    daemon = DaemonProcess(profile=folder / "profile.yaml", db=folder / "llmops.db")
    start(
        daemon,
        fake_upstream,
        header_timeout=HEADER_TIMEOUT,
        body_timeout=BODY_TIMEOUT,
        idle_timeout=IDLE_TIMEOUT,
    )
    yield daemon
    daemon.stop()


@dataclass
class Answer:
    status: int
    headers: dict[str, str]
    body: bytes

    def error(self) -> dict[str, object]:
        assert self.headers["content-type"] == "application/json", self
        payload = json.loads(self.body)
        assert set(payload) == {"error"} and set(payload["error"]) == {"message", "type", "param", "code"}
        error: dict[str, object] = payload["error"]
        assert isinstance(error["message"], str) and error["message"]
        return error


def connect(daemon: DaemonProcess) -> socket.socket:
    sock = socket.create_connection((daemon.host, daemon.port), timeout=GIVE_UP)
    sock.settimeout(GIVE_UP)
    return sock


def read_answer(sock: socket.socket) -> Answer | None:
    """One response (its body by content-length, or to the close), or None if the server closed
    without a byte. A socket timeout (GIVE_UP) propagates: the server neither answered nor closed."""
    data = b""
    while b"\r\n\r\n" not in data:
        chunk = sock.recv(65536)
        if not chunk:
            assert not data, f"closed in the middle of a response head: {data!r}"
            return None
        data += chunk
    head, _, body = data.partition(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    headers = {k.strip().lower(): v.strip() for k, _, v in (line.partition(":") for line in lines[1:])}
    length = int(headers.get("content-length", "-1"))
    while length < 0 or len(body) < length:
        chunk = sock.recv(65536)
        if not chunk:
            break
        body += chunk
    return Answer(int(lines[0].split()[1]), headers, body)


def status_of(answer: Answer | None) -> int | None:
    # not a walrus in an assert: pytest's rewriting re-evaluates it in later asserts that name it
    return answer.status if answer is not None else None


def closed_by_server(sock: socket.socket) -> bool:
    try:
        return sock.recv(1) == b""
    except ConnectionResetError:
        return True


def request(method: str, path: bytes, body: bytes = b"", extra: bytes = b"") -> bytes:
    length = b"content-length: %d\r\n" % len(body) if method == "POST" else b""
    return b"%s %s HTTP/1.1\r\nhost: test\r\n%s%s\r\n%s" % (method.encode(), path, length, extra, body)


def chat_body(words: int = 1, stream: bool = False) -> bytes:
    content = " ".join(["w"] * words)
    return json.dumps(
        {"model": "fake", "stream": stream, "messages": [{"role": "user", "content": content}]}
    ).encode()


def test_slow_loris_head_gets_a_json_408_at_the_header_deadline(slow_gateway: DaemonProcess) -> None:
    with connect(slow_gateway) as sock:
        started = time.monotonic()
        sock.sendall(b"POST /v1/chat/completions HTTP/1.1\r\nhost: test\r\nx-slow: ")
        while not select.select([sock], [], [], 0.2)[0]:  # one byte of a header value every 0.2 s
            assert time.monotonic() - started < GIVE_UP, "the trickled head was never cut"
            sock.sendall(b"a")
        answer = read_answer(sock)
        elapsed = time.monotonic() - started
        assert answer is not None and answer.status == 408
        assert answer.error()["code"] == "request_timeout"
        assert closed_by_server(sock)
    assert HEADER_TIMEOUT - EARLY <= elapsed <= HEADER_TIMEOUT + MARGIN


def test_a_silent_connection_is_closed_at_the_header_deadline(slow_gateway: DaemonProcess) -> None:
    with connect(slow_gateway) as sock:
        started = time.monotonic()
        assert read_answer(sock) is None  # nothing asked, nothing answered: a bare close
        elapsed = time.monotonic() - started
    assert HEADER_TIMEOUT - EARLY <= elapsed <= HEADER_TIMEOUT + MARGIN


def test_a_partial_body_gets_a_json_408_at_the_body_deadline(slow_gateway: DaemonProcess) -> None:
    with connect(slow_gateway) as sock:
        sock.sendall(b"POST /v1/chat/completions HTTP/1.1\r\nhost: test\r\ncontent-type: application/json\r\n"
                     b"content-length: 1000\r\n\r\n" + b'{"model": ')  # fmt: skip
        started = time.monotonic()
        answer = read_answer(sock)
        elapsed = time.monotonic() - started
        assert answer is not None and answer.status == 408
        assert answer.error()["code"] == "request_timeout"
        assert closed_by_server(sock)
    assert BODY_TIMEOUT - EARLY <= elapsed <= BODY_TIMEOUT + MARGIN


def test_keep_alive_serves_several_requests_then_closes_when_idle(slow_gateway: DaemonProcess) -> None:
    with connect(slow_gateway) as sock:
        for i in range(4):
            if i:
                time.sleep(IDLE_TIMEOUT / 2)  # pauses within the idle deadline keep the connection
            sock.sendall(request("POST", CHAT, chat_body()) if i % 2 else request("GET", b"/health"))
            answer = read_answer(sock)
            assert answer is not None and answer.status == 200, answer
            assert answer.headers.get("connection") != "close"
        started = time.monotonic()
        assert read_answer(sock) is None
        elapsed = time.monotonic() - started
    assert IDLE_TIMEOUT - EARLY <= elapsed <= IDLE_TIMEOUT + MARGIN


def test_a_long_stream_outlives_the_request_deadlines(
    slow_gateway: DaemonProcess, fake_upstream: FakeOpenAI
) -> None:
    """The deadlines bound receiving a request, never answering it: a stream longer than all of them
    is served whole."""
    fake_upstream.inject(stream="slow")  # 0.05 s an event: 80 words take about 4 s
    started = time.monotonic()
    with connect(slow_gateway) as sock:
        sock.sendall(request("POST", CHAT, chat_body(words=80, stream=True)))
        received = b""
        while not received.endswith(b"data: [DONE]\n\n\r\n0\r\n\r\n"):
            chunk = sock.recv(65536)
            assert chunk, f"the stream was cut after {time.monotonic() - started:.1f} s: {received[-200:]!r}"
            received += chunk
    assert received.startswith(b"HTTP/1.1 200 ")
    assert time.monotonic() - started > max(HEADER_TIMEOUT, BODY_TIMEOUT, IDLE_TIMEOUT)


@pytest.mark.parametrize(
    "raw",
    [
        b"POST /v1/chat/completions HTTP/1.1\r\nhost: test\r\ncontent-length: -1\r\n\r\n{}",
        b"GARBAGE\r\n\r\n",
        b"GET /health HTTP/1.1\r\nhost: test\r\nx-bad: a\x01b\r\n\r\n",
        b"GET /health HTTP/1.1\r\nhost: test\r\nbad header: x\r\n\r\n",
        b"POST /v1/chat/completions HTTP/1.1\r\nhost: test\r\ntransfer-encoding: chunked\r\n\r\nzz\r\n",
    ],
    ids=[
        "negative-content-length",
        "garbage-request-line",
        "control-byte-in-value",
        "space-in-name",
        "bad-chunk",
    ],
)
def test_malformed_framing_gets_an_openai_shaped_400(slow_gateway: DaemonProcess, raw: bytes) -> None:
    with connect(slow_gateway) as sock:
        sock.sendall(raw)
        answer = read_answer(sock)
        assert answer is not None and answer.status == 400, answer
        error = answer.error()
        assert error["type"] == "invalid_request_error" and error["code"] == "malformed_http"
        assert answer.headers["connection"] == "close" and closed_by_server(sock)


def test_one_connection_over_the_cap_gets_a_json_503(
    new_daemon: DaemonProcess, fake_upstream: FakeOpenAI
) -> None:
    cap = 3
    start(new_daemon, fake_upstream, max_connections=cap)
    held = [connect(new_daemon) for _ in range(cap)]
    try:
        for sock in held:  # an answer on each: the server has them all
            sock.sendall(request("GET", b"/health"))
            assert status_of(read_answer(sock)) == 200
        with connect(new_daemon) as extra:
            extra.sendall(request("GET", b"/health"))
            answer = read_answer(extra)
            assert answer is not None and answer.status == 503, answer
            assert answer.error()["code"] == "too_many_connections"
            assert answer.headers["connection"] == "close" and closed_by_server(extra)
        for sock in held:  # the others still work
            sock.sendall(request("POST", CHAT, chat_body()))
            assert status_of(read_answer(sock)) == 200
        held.pop().close()
        deadline = time.monotonic() + GIVE_UP  # once its close is seen, a slot is free again
        while (status := httpx.get(new_daemon.url + "/health", timeout=GIVE_UP).status_code) == 503:
            assert time.monotonic() < deadline
            time.sleep(0.05)
        assert status == 200
    finally:
        for sock in held:
            sock.close()


def test_shutdown_drops_half_received_requests_at_once(
    new_daemon: DaemonProcess, fake_upstream: FakeOpenAI
) -> None:
    """The graceful shutdown waits (30 s at most) for requests in flight; one whose body or head
    will never come is answered 503 and closed at once instead, not cancelled into a plain-text 500
    when the 30 s are up."""
    start(new_daemon, fake_upstream, header_timeout=60, body_timeout=60)
    assert new_daemon.proc is not None
    with connect(new_daemon) as body, connect(new_daemon) as head:
        body.sendall(b"POST /v1/chat/completions HTTP/1.1\r\nhost: test\r\ncontent-length: 1000\r\n\r\n{{{{")
        head.sendall(b"POST /v1/chat/completions HTTP/1.1\r\nhost: te")
        time.sleep(0.3)  # the first one's handler is waiting for the rest of its body
        started = time.monotonic()
        new_daemon.proc.send_signal(signal.SIGTERM)
        for sock in (body, head):
            answer = read_answer(sock)
            assert answer is not None and answer.status == 503, answer
            assert answer.error()["code"] == "shutting_down" and closed_by_server(sock)
        new_daemon.proc.wait(GIVE_UP)
    assert time.monotonic() - started < 5.0  # far below the 30 s graceful-shutdown limit
    assert "stopped cleanly" in new_daemon.log()


def test_server_settings_default_to_sane_values() -> None:
    from daemon.config.schema import ServerConfig

    server = ServerConfig()
    assert (server.header_timeout, server.body_timeout, server.idle_timeout) == (10.0, 30.0, 15.0)
    assert server.max_connections == 1024
