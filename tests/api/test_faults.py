"""Issue 8, "What it must show", through the real daemon: every fault of the fault-injecting
upstream (tests/fixtures/faulty_upstream.py), streaming and not, against models whose key the
upstream echoes back.

One daemon (a subprocess on loopback, local mode: /admin is open) serves OpenAI-compatible models
and an Anthropic model, all pointed at ONE FaultyUpstream that accepts only KEY (read from an
environment variable) and quotes it, whole or masked, in its 401s. For each fault the test checks:
- the client's HTTP status and the OpenAI error shape (a stream that had started: a 200, then a
  final `data: {"error": ...}` event and no `[DONE]`);
- the elapsed time against the configured deadline (a lower bound where it must be waited for);
- how many requests reached the upstream (the retry rules: README, daemon/providers/failures.py);
- this call's trace (by its `x-llmops-trace-id`, never "the newest"): status, HTTP status, error;
- that the key, whole or masked or any run of it, is in no response, trace, search, event or log.
The module's last test greps the database, its WAL and the log for the key.
"""

from __future__ import annotations

import contextlib
import re
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import orjson
import pytest

from daemon.core.redact import REDACTED
from tests.daemon_process import DaemonProcess
from tests.fixtures.fake_openai import free_port
from tests.fixtures.faulty_upstream import Fault, FaultyUpstream, masked

CHAT = "/v1/chat/completions"
KEY_ENV = "LLMOPS_FAULTS_TEST_KEY"
# Shaped like an OpenAI project key, so the masked echo looks like OpenAI's.
KEY = "sk-proj-Zq8TnW3vKd7LpX2mRf5YbH9cJs4GaE6uVo1NiQt0Pw-Mx7k"
SECRET = KEY.removeprefix("sk-proj-")  # the part that is not a public prefix
RUN = 8  # a shared run of 8 characters of the secret is a leak, not a coincidence
RUNS = frozenset(SECRET[i : i + RUN] for i in range(len(SECRET) - RUN + 1))
KEY_PIECE = SECRET[:12]  # what someone would type into /admin/traces?q= to find the key

# The profile's deadlines (seconds) and retries, small so the suite is fast.
CONNECT_S, READ_S, TOTAL_S, IDLE_S, RETRIES = 1.0, 1.0, 3.0, 1.0, 2
PATIENT_READ_S = 3.0  # edge-patient: a read timeout its clients leave well before
SLACK_S = 1.5  # on top of the deadline that applies; an immediate failure gets this much
BACKOFF_S = 0.25 + 0.5  # the jittered backoff's ceilings before retries 1 and 2
TRICKLE_S = 0.25  # a trickle's interval: well under the read and idle timeouts

OPENAI, CLAUDE, COLD, PATIENT, NOWHERE = "edge", "edge-claude", "edge-cold", "edge-patient", "edge-nowhere"


def profile(upstream: FaultyUpstream, dead_url: str) -> str:
    def model(name: str, provider: str, url: str, read: float = READ_S, total: float = TOTAL_S) -> str:
        return f"""
  {name}:
    provider: {provider}
    base_url: "{url}"
    api_key: "${{{KEY_ENV}}}"
    price: {{input: 1.0, output: 2.0}}
    timeout: {{connect: {CONNECT_S}, read: {read}, total: {total}, idle: {IDLE_S}}}
    retries: {RETRIES}"""

    return "name: faults\nmodels:" + "".join(
        [
            model(OPENAI, "openai", upstream.openai_url),
            model(CLAUDE, "anthropic", upstream.base_url),
            model(COLD, "openai", upstream.openai_url),  # only ever reset: its pool is always empty
            model(PATIENT, "openai", upstream.openai_url, read=PATIENT_READ_S, total=2 * PATIENT_READ_S),
            model(NOWHERE, "openai", dead_url),  # nobody listens there
        ]
    )


# -- the key, wherever it might leak ---------------------------------------------------------------


def leaks(text: str) -> list[str]:
    """The key, its masked form and the runs of it found in `text`."""
    found = [form for form in (KEY, masked(KEY)) if form in text]
    return found + sorted(run for run in RUNS if run in text)


def assert_no_key(text: str, where: str) -> None:
    found = leaks(text)
    assert not found, f"the upstream key leaked into {where}: {found}\n{text[-2000:]}"


# -- the daemon and what it publishes --------------------------------------------------------------


class EventLog:
    """Everything /admin/events sends while the module runs, read by a thread."""

    def __init__(self, url: str) -> None:
        self.url = url
        self.connected = threading.Event()
        self._lock = threading.Lock()
        self._raw: list[str] = []
        self._events: list[tuple[str, str]] = []  # (kind, data)
        self._thread = threading.Thread(target=self._read, name="admin-events", daemon=True)

    def start(self) -> EventLog:
        self._thread.start()
        assert self.connected.wait(10), "GET /admin/events never said it was connected"
        return self

    def _read(self) -> None:
        kind = "message"
        timeout = httpx.Timeout(10.0, read=None)
        with (
            contextlib.suppress(httpx.HTTPError),
            httpx.stream("GET", self.url + "/admin/events", timeout=timeout) as r,
        ):
            for line in r.iter_lines():
                with self._lock:
                    self._raw.append(line)
                if line.startswith(": connected"):
                    self.connected.set()
                elif line.startswith("event: "):
                    kind = line[7:]
                elif line.startswith("data: "):
                    with self._lock:
                        self._events.append((kind, line[6:]))
                elif not line:
                    kind = "message"

    def text(self) -> str:
        with self._lock:
            return "\n".join(self._raw)

    def trace_event(self, trace_id: str, timeout: float = 5.0) -> str:
        """The `trace` event of this trace, as sent."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            with self._lock:
                for kind, data in self._events:
                    if kind == "trace" and orjson.loads(data).get("id") == trace_id:
                        return data
            time.sleep(0.02)
        raise AssertionError(f"/admin/events published no trace event for {trace_id} within {timeout} s")

    def join(self) -> None:
        self._thread.join(timeout=10)


@dataclass
class Gateway:
    daemon: DaemonProcess
    upstream: FaultyUpstream
    client: httpx.Client
    events: EventLog

    def get(self, path: str, **params: Any) -> httpx.Response:
        return self.client.get(path, params=params)


@pytest.fixture(scope="module")
def upstream() -> Iterator[FaultyUpstream]:
    with FaultyUpstream(api_key=KEY) as faulty:  # any other key gets a (masked-echo) 401
        yield faulty


@pytest.fixture(scope="module")
def gw(upstream: FaultyUpstream, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Gateway]:
    folder = tmp_path_factory.mktemp("faults")
    (folder / "profile.yaml").write_text(profile(upstream, f"http://127.0.0.1:{free_port()}/v1"))
    daemon = DaemonProcess(profile=folder / "profile.yaml", db=folder / "llmops.db", env={KEY_ENV: KEY})
    daemon.start()
    client = httpx.Client(base_url=daemon.url, timeout=30)
    events = EventLog(daemon.url).start()
    try:
        yield Gateway(daemon, upstream, client, events)
    finally:
        client.close()
        daemon.stop()
        events.join()


@pytest.fixture(autouse=True)
def _fresh_upstream(upstream: FaultyUpstream) -> None:
    upstream.reset()  # no fault, no requests counted


# -- one call, its answer, its trace ---------------------------------------------------------------


@dataclass
class Answer:
    status: int
    headers: httpx.Headers
    raw: str
    elapsed: float
    marker: str  # a word only this call's request contains

    @property
    def trace_id(self) -> str:
        trace_id: str = self.headers.get("x-llmops-trace-id", "")
        assert trace_id, f"no x-llmops-trace-id on a {self.status}: {self.raw[:300]}"
        return trace_id

    @property
    def data(self) -> list[str]:
        """A stream's `data:` payloads."""
        return [line[6:] for line in self.raw.splitlines() if line.startswith("data: ")]

    def everything(self) -> str:
        return self.raw + "\n" + "\n".join(f"{name}: {value}" for name, value in self.headers.multi_items())


def call(gw: Gateway, model: str = OPENAI, stream: bool = False, **extra: Any) -> Answer:
    marker = f"marker{uuid.uuid4().hex[:12]}"
    body = {
        "model": model,
        "stream": stream,
        "messages": [{"role": "user", "content": f"{marker} one two three"}],
    }
    started = time.monotonic()
    with gw.client.stream("POST", CHAT, json={**body, **extra}) as response:
        raw = response.read().decode()
    return Answer(response.status_code, response.headers, raw, time.monotonic() - started, marker)


def openai_error(body: Any) -> dict[str, Any]:
    """The OpenAI error shape, exactly: {"error": {"message", "type", "param", "code"}}."""
    assert isinstance(body, dict) and set(body) == {"error"}, body
    error = body["error"]
    assert set(error) == {"message", "type", "param", "code"}, error
    assert isinstance(error["message"], str) and error["message"], error
    return dict(error)


def failure(answer: Answer, status: int, started: bool) -> tuple[dict[str, Any], str]:
    """The client's error: an HTTP error status with a JSON body, or (a stream that had started)
    a 200 whose last event is the error, with no [DONE]; and the text the client was streamed."""
    if not started:
        assert answer.status == status, answer.raw
        assert answer.headers["content-type"].startswith("application/json"), answer.headers
        return openai_error(orjson.loads(answer.raw)), ""
    assert answer.status == 200, answer.raw
    assert answer.headers["content-type"].startswith("text/event-stream"), answer.headers
    *chunks, last = answer.data
    assert "[DONE]" not in answer.data, answer.raw
    # The gateway answers 200 only once it holds the upstream's first chunk: the client gets it.
    assert chunks, f"a 200 stream whose first chunk never reached the client: {answer.raw}"
    text = []
    for chunk in chunks:  # what came before the error is the answer's chunks
        parsed = orjson.loads(chunk)
        assert "error" not in parsed and parsed["object"] == "chat.completion.chunk", chunk
        text += [choice["delta"].get("content") or "" for choice in parsed["choices"]]
    return openai_error(orjson.loads(last)), "".join(text)


def trace_of(gw: Gateway, answer: Answer) -> dict[str, Any]:
    """This call's trace, by the id its response names."""
    response = gw.get(f"/admin/traces/{answer.trace_id}")
    assert response.status_code == 200, response.text
    assert_no_key(response.text, f"GET /admin/traces/{answer.trace_id}")
    trace: dict[str, Any] = response.json()
    assert trace["id"] == answer.trace_id
    return trace


def assert_no_key_anywhere(gw: Gateway, answer: Answer) -> None:
    """Not in the response (body, headers), the trace, a search for it, this call's event, the log."""
    assert_no_key(answer.everything(), "the response")
    trace_of(gw, answer)
    found = gw.get("/admin/traces", q=answer.marker)  # the search finds this call by its words...
    assert [row["id"] for row in found.json()["data"]] == [answer.trace_id], found.text
    searched = gw.get("/admin/traces", q=KEY_PIECE)  # ...and no call by a piece of the key
    assert searched.status_code == 200 and searched.json()["data"] == [], searched.text
    assert_no_key(searched.text, f"/admin/traces?q={KEY_PIECE}")
    assert_no_key(gw.events.trace_event(answer.trace_id), "the /admin/events trace event")
    assert_no_key(gw.daemon.log(), "the daemon log")


# -- every fault -----------------------------------------------------------------------------------


@dataclass(frozen=True)
class Case:
    name: str
    fault: Fault
    stream: bool
    status: int  # the error's status (a started stream: the trace's; the client gets 200)
    attempts: int  # requests that reached the upstream
    says: str  # a regex the error's message matches
    model: str = OPENAI
    options: dict[str, Any] = field(default_factory=dict)
    started: bool = False  # a stream that started: 200, then the error event
    waits: float = 0.0  # a deadline (or retry-after) the call must wait for: elapsed >= this
    budget: float | None = None  # the time the call may take beyond SLACK_S (default: waits)

    @property
    def id(self) -> str:
        return f"{self.model}-{self.name}-{'stream' if self.stream else 'json'}"


def both(name: str, fault: Fault, status: int, attempts: int, says: str, **kw: Any) -> list[Case]:
    """The case for a JSON call and for a stream that fails before its first chunk."""
    return [Case(name, fault, stream, status, attempts, says, **kw) for stream in (False, True)]


def mid(
    name: str, fault: Fault, says: str, one_read: bool = True, options: dict[str, Any] | None = None,
    status: int = 502, **kw: Any,
) -> Case:  # fmt: skip
    """A stream that fails after its first chunk: a 200, the chunks, then the error event.
    `one_read`: the upstream sends it all in one write (as a buffering proxy does), so its events
    reach the gateway in one read; only for faults that do not pause."""
    options = {**({"coalesce": True} if one_read else {}), **(options or {})}
    return Case(name, fault, True, status, 1, says, started=True, options=options, **kw)


# The message still says what happened, with the key blanked.
ECHO_401 = rf"answered HTTP 401: (Unauthorized\. )?Incorrect API key provided: {re.escape(REDACTED)}\."
ECHO_MID = rf"failed mid-stream: (authentication_error: )?Incorrect API key provided: {re.escape(REDACTED)}\."
ALL = 1 + RETRIES
MASKED = {"masked": True}
IDLE = r"no complete stream event for 1 s \(the idle timeout\)"

CASES: list[Case] = [
    # 401s quoting the key: never retried, and the key is scrubbed
    *both("401-json-whole", Fault.KEY_ECHO_JSON, 502, 1, ECHO_401),
    *both("401-json-masked", Fault.KEY_ECHO_JSON, 502, 1, ECHO_401, options=MASKED),
    *both("401-text-whole", Fault.KEY_ECHO_TEXT, 502, 1, ECHO_401),
    *both("401-text-masked", Fault.KEY_ECHO_TEXT, 502, 1, ECHO_401, options=MASKED),
    mid("401-mid-stream-whole", Fault.KEY_ECHO_MID_STREAM, ECHO_MID),
    mid("401-mid-stream-masked", Fault.KEY_ECHO_MID_STREAM, ECHO_MID, options=MASKED),
    *both("401-json-whole", Fault.KEY_ECHO_JSON, 502, 1, ECHO_401, model=CLAUDE),
    *both("401-json-masked", Fault.KEY_ECHO_JSON, 502, 1, ECHO_401, model=CLAUDE, options=MASKED),
    *both("401-text-whole", Fault.KEY_ECHO_TEXT, 502, 1, ECHO_401, model=CLAUDE),
    *both("401-text-masked", Fault.KEY_ECHO_TEXT, 502, 1, ECHO_401, model=CLAUDE, options=MASKED),
    mid("401-mid-stream-whole", Fault.KEY_ECHO_MID_STREAM, ECHO_MID, model=CLAUDE),
    mid("401-mid-stream-masked", Fault.KEY_ECHO_MID_STREAM, ECHO_MID, model=CLAUDE, options=MASKED),
    # the upstream said "not now": retried (5xx after a backoff, 429 after its retry-after)
    *both("html-500", Fault.HTML_500, 502, ALL,
          r"answered HTTP 500: an HTML page \(500 Internal Server Error\) \(3 attempts\)", budget=BACKOFF_S),
    *both("html-503", Fault.HTML_503, 502, ALL,
          r"answered HTTP 503: an HTML page \(503 Service Unavailable\) \(3 attempts\)", budget=BACKOFF_S),
    *both("html-503", Fault.HTML_503, 502, ALL,
          r"answered HTTP 503: an HTML page .*\(3 attempts\)", model=CLAUDE, budget=BACKOFF_S),
    *both("429-short", Fault.RATE_LIMITED, 502, ALL, r"answered HTTP 429: Rate limit reached.*\(3 attempts\)",
          options={"retry_after": "0.4"}, waits=RETRIES * 0.4),
    *both("429-long", Fault.RATE_LIMITED, 502, 1, r"answered HTTP 429: .*retried after 120 s",
          options={"retry_after": "120"}),
    *both("429-long", Fault.RATE_LIMITED, 502, 1, r"answered HTTP 429: .*retried after 120 s", model=CLAUDE,
          options={"retry_after": "120"}),
    # the request went out: never sent again
    *both("reset-before-answer", Fault.RESET_BEFORE_ANSWER, 502, 1, r"reset the connection before answering",
          model=COLD),
    *both("reset-after-head", Fault.RESET_AFTER_HEAD, 502, 1, r"broke off its response"),
    mid("reset-mid-stream", Fault.RESET_MID_STREAM, r"broke off its response", one_read=False),
    mid("reset-mid-stream", Fault.RESET_MID_STREAM, r"broke off its response", one_read=False, model=CLAUDE),
    # answers that are not what they should be: 502, never 500
    Case("malformed-sse", Fault.MALFORMED_SSE, False, 502, 1, r"sent a response that is not JSON"),
    mid("malformed-sse", Fault.MALFORMED_SSE, r"without \[DONE\]|malformed stream|not JSON"),
    mid("malformed-sse", Fault.MALFORMED_SSE, r"before message_stop|malformed stream|not JSON", model=CLAUDE),
    mid("missing-done", Fault.MISSING_DONE, r"ended its stream without \[DONE\]"),
    mid("missing-message-stop", Fault.MISSING_DONE, r"ended its stream before message_stop", model=CLAUDE),
    Case("invalid-json", Fault.INVALID_JSON, False, 502, 1, r"sent a response that is not JSON"),
    mid("invalid-json", Fault.INVALID_JSON, r"sent a stream event that is not JSON"),
    mid("invalid-json", Fault.INVALID_JSON, r"sent a stream event that is not JSON", model=CLAUDE),
    Case("bad-usage", Fault.BAD_USAGE, False, 502, 1, r"sent malformed usage: prompt_tokens is a str"),
    mid("bad-usage", Fault.BAD_USAGE, r"sent malformed usage: prompt_tokens is a str"),
    Case("bad-usage", Fault.BAD_USAGE, False, 502, 1, r"sent malformed usage: input_tokens is a str", model=CLAUDE),
    mid("bad-usage", Fault.BAD_USAGE, r"sent malformed usage: output_tokens is a str", model=CLAUDE),
    Case("bad-message", Fault.BAD_MESSAGE, False, 502, 1, r"sent a completion whose message is not an object"),
    mid("bad-message", Fault.BAD_MESSAGE, r"sent a stream event whose delta is not an object"),
    Case("bad-message", Fault.BAD_MESSAGE, False, 502, 1, r"sent a message without content", model=CLAUDE),
    mid("bad-message", Fault.BAD_MESSAGE, r"sent a stream event whose delta is not an object", model=CLAUDE),
    *both("not-http", Fault.NOT_HTTP, 502, 1, r"sent an invalid or incomplete response"),
    # deadlines: a timeout is final (the model may be running), and each deadline is the one that trips
    *both("hang", Fault.HANG, 504, 1, r"timed out waiting for a response \(nothing within the read timeout, 1 s\)",
          waits=READ_S),
    Case("trickle-body", Fault.TRICKLE_BODY, False, 504, 1, r"longer than its total timeout \(3 s\)",
         options={"interval": TRICKLE_S}, waits=TOTAL_S),
    Case("trickle-stream", Fault.TRICKLE_STREAM, True, 504, 1, IDLE, options={"interval": TRICKLE_S}, waits=IDLE_S),
    mid("trickle-stream-after-2-events", Fault.TRICKLE_STREAM, IDLE, one_read=False, status=504,
        options={"interval": TRICKLE_S, "after_events": 2}, waits=IDLE_S),
]  # fmt: skip


@pytest.mark.parametrize("case", [pytest.param(case, id=case.id) for case in CASES])
def test_each_fault_through_the_daemon(gw: Gateway, case: Case) -> None:
    gw.upstream.inject(case.fault, count=None, **case.options)
    answer = call(gw, case.model, case.stream)

    # What the client got.
    error, streamed = failure(answer, case.status, case.started)
    assert error["type"] == "upstream_error"
    assert error["code"] == ("upstream_timeout" if case.status == 504 else "upstream_error")
    assert f"Upstream '{case.model}'" in error["message"] and re.search(case.says, error["message"]), error

    # How long it took, against the deadline that applies.
    assert answer.elapsed >= case.waits, f"{answer.elapsed:.2f} s: the call did not wait {case.waits} s"
    limit = (case.waits if case.budget is None else case.budget) + SLACK_S
    assert answer.elapsed < limit, f"{answer.elapsed:.2f} s, over the {limit:.2f} s this fault allows"

    # What reached the upstream: the request, with the key (so an echo is of the real key), this often.
    assert gw.upstream.attempts(case.fault) == case.attempts and gw.upstream.attempts(None) == 0
    sent = gw.upstream.requests[0].headers
    assert sent.get("x-api-key") == KEY if case.model == CLAUDE else sent["authorization"] == f"Bearer {KEY}"

    # This call's trace says what the client was told.
    trace = trace_of(gw, answer)
    assert (trace["status"], trace["http_status"], trace["error"]) == ("error", case.status, error["message"])
    assert trace["stream"] is case.stream and trace["requested_model"] == case.model
    assert (trace["response"] or "") == streamed  # the trace's answer is what the client was sent
    assert [(a["model"], a["status"], a["http_status"], a["error"]) for a in trace["attempts"]] == [
        (case.model, "error", case.status, error["message"])
    ]
    assert_no_key_anywhere(gw, answer)


# -- the retry rules the README promises -----------------------------------------------------------


@pytest.mark.parametrize("stream", [False, True], ids=["json", "stream"])
@pytest.mark.parametrize("fault", [Fault.RATE_LIMITED, Fault.HTML_503])
def test_a_refusal_then_an_answer_is_retried_and_honours_retry_after(
    gw: Gateway, fault: Fault, stream: bool
) -> None:
    """Supersedes test_errors.py's "honours retry-after", which passed without waiting: two
    429s asking for 0.4 s each, then an answer: the call must have waited 0.8 s. (A 503 then an
    answer: retried after a backoff.)"""
    gw.upstream.inject(fault, count=2, retry_after="0.4")
    answer = call(gw, stream=stream)
    assert answer.status == 200, answer.raw
    assert gw.upstream.attempts(fault) == 2 and gw.upstream.attempts(None) == 1
    waited = 2 * 0.4 if fault is Fault.RATE_LIMITED else 0.0  # (the fixture's 5xx name no wait: backoff)
    assert waited <= answer.elapsed < max(waited, BACKOFF_S) + SLACK_S, answer.elapsed
    if stream:
        assert answer.data[-1] == "[DONE]"
    else:
        assert orjson.loads(answer.raw)["choices"][0]["message"]["content"].endswith("one two three")
    trace = trace_of(gw, answer)
    assert (trace["status"], trace["http_status"], trace["error"]) == ("ok", 200, None)
    assert [(a["status"], a["http_status"]) for a in trace["attempts"]] == [("ok", 200)]


def test_an_unreachable_upstream_is_retried_then_502(gw: Gateway) -> None:
    """No connection could be made: the request provably never left, so it is retried."""
    answer = call(gw, NOWHERE)
    error, _ = failure(answer, 502, started=False)
    assert re.search(rf"Upstream '{NOWHERE}' could not be reached .*\({ALL} attempts\)", error["message"]), (
        error
    )
    assert answer.elapsed < BACKOFF_S + SLACK_S
    trace = trace_of(gw, answer)
    assert (trace["status"], trace["http_status"], trace["error"]) == ("error", 502, error["message"])


@pytest.mark.parametrize("stream", [False, True], ids=["json", "stream"])
def test_a_reset_on_a_kept_alive_connection_is_resent_once_on_a_fresh_one(gw: Gateway, stream: bool) -> None:
    """http1's one transparent resend (failures.py): a kept-alive connection reset before any
    answer is most likely one the upstream closed while idle. The resend is the only one."""
    assert call(gw).status == 200  # leaves a kept-alive connection in edge's pool
    gw.upstream.reset()
    gw.upstream.inject(Fault.RESET_BEFORE_ANSWER, count=None)
    answer = call(gw, stream=stream)
    error, _ = failure(answer, 502, started=False)
    assert "reset the connection before answering" in error["message"]
    assert gw.upstream.attempts(Fault.RESET_BEFORE_ANSWER) == 2  # the reused connection, one fresh
    assert trace_of(gw, answer)["error"] == error["message"]


# -- a client that leaves before the first upstream byte -------------------------------------------

LEAVERS = 4
LEAVE_AFTER_S = 0.7
NOTICE_S = 1.0  # the trace must be written this soon after its client left


def wait_for(condition: Callable[[], Any], deadline: float, what: str) -> Any:
    """Poll `condition` until it returns something truthy, or fail at `deadline` (monotonic)."""
    while True:
        value = condition()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.02)


def test_clients_that_leave_before_the_first_byte_are_noticed(gw: Gateway) -> None:
    """Issue 8, defect 7: the gateway must notice that the client left, end the trace as
    cancelled at once and send nothing more upstream (it had made 24 attempts for 8 clients)."""
    idle_connections = gw.upstream.open_connections  # other models' kept-alive ones
    gw.upstream.inject(Fault.HANG, count=None)
    run = uuid.uuid4().hex[:8]
    users = [f"leaver-{run}-{i}" for i in range(LEAVERS)]
    started: dict[str, float] = {}
    left: dict[str, float] = {}
    answered: list[str] = []

    def leave(user: str, stream: bool) -> None:
        body = {
            "model": PATIENT,
            "stream": stream,
            "user": user,
            "messages": [{"role": "user", "content": "hang"}],
        }
        with httpx.Client(base_url=gw.daemon.url, timeout=httpx.Timeout(10.0, read=LEAVE_AFTER_S)) as client:
            started[user] = time.monotonic()
            try:
                answered.append(client.post(CHAT, json=body).text)
            except httpx.ReadTimeout:
                left[user] = time.monotonic()  # the client closes its connection here

    threads = [threading.Thread(target=leave, args=(user, i % 2 == 1)) for i, user in enumerate(users)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=10)
    assert not answered and set(left) == set(users), answered

    def traces_of(user: str) -> Callable[[], list[dict[str, Any]]]:
        return lambda: list(gw.get("/admin/traces", user=user).json()["data"])

    for user in users:
        rows = wait_for(
            traces_of(user),
            left[user] + NOTICE_S,
            f"the trace of {user}, {NOTICE_S} s after it left (the read timeout is {PATIENT_READ_S} s)",
        )
        assert len(rows) == 1, rows
        trace = gw.get(f"/admin/traces/{rows[0]['id']}").json()
        assert (trace["status"], trace["http_status"]) == ("cancelled", 499), trace
        assert [(a["status"], a["http_status"]) for a in trace["attempts"]] == [("cancelled", 499)]
        assert trace["latency_ms"] / 1000 < left[user] - started[user] + NOTICE_S, trace["latency_ms"]
        assert_no_key(gw.events.trace_event(trace["id"]), "a cancelled call's event")

    # The upstream calls were abandoned with their clients (their connections closed)...
    wait_for(
        lambda: gw.upstream.open_connections <= idle_connections,
        time.monotonic() + NOTICE_S,
        "the gateway to close its hanging upstream calls",
    )
    # ...and nothing was sent again, even past the moment the read timeout would have fired.
    time.sleep(max(0.0, min(started.values()) + PATIENT_READ_S + 0.3 - time.monotonic()))
    assert gw.upstream.attempts(Fault.HANG) == LEAVERS and len(gw.upstream.requests) == LEAVERS


# -- hostile bodies and parameters -----------------------------------------------------------------


def local_address(response: httpx.Response) -> Any:
    return response.extensions["network_stream"].get_extra_info("client_addr")


@pytest.mark.parametrize("depth", [300, 1000])
def test_json_nested_deeply_is_a_400_and_the_connection_lives(gw: Gateway, depth: int) -> None:
    """Issue 8, defect 2: 253 to 1022 levels gave a 500 and broke the keep-alive connection."""
    nested = b"[" * depth + b"]" * depth
    raw = b'{"model": "edge", "messages": [{"role": "user", "content": "deep"}], "metadata": ' + nested + b"}"
    with httpx.Client(base_url=gw.daemon.url, timeout=10) as client:
        response = client.post(CHAT, content=raw, headers={"content-type": "application/json"})
        where = local_address(response)
        assert response.status_code == 400, response.text
        error = openai_error(response.json())
        assert error["type"] == "invalid_request_error"
        assert re.search(r"nested too deeply.* \d+ levels", error["message"]), error
        assert response.headers.get("connection", "keep-alive").lower() != "close"
        trace = gw.get(f"/admin/traces/{response.headers['x-llmops-trace-id']}").json()
        assert (trace["status"], trace["http_status"], trace["error"]) == ("error", 400, error["message"])

        after = client.post(CHAT, json={"model": OPENAI, "messages": [{"role": "user", "content": "after"}]})
        assert after.status_code == 200, after.text
        assert local_address(after) == where  # the same keep-alive connection served it


def test_a_cursor_too_large_for_sqlite_is_a_400(gw: Gateway) -> None:
    """Issue 8, defect 9: an OverflowError reached SQLite and gave a 500."""
    response = gw.get("/admin/traces", cursor="9" * 30)
    assert response.status_code == 400, response.text
    error = openai_error(response.json())
    assert error["type"] == "invalid_request_error" and error["param"] == "cursor", error


# -- last: the key in nothing the daemon wrote -----------------------------------------------------


def test_zz_last_the_key_is_in_no_database_wal_log_or_event(gw: Gateway) -> None:
    """Run last in this module (file order): after the whole fault suite, the key, whole or masked,
    is in neither the database file, its WAL, the daemon's log nor any event it published. The
    daemon is still running, so its WAL still holds what it wrote."""
    for model, fault, stream in [
        (OPENAI, Fault.KEY_ECHO_JSON, False),
        (OPENAI, Fault.KEY_ECHO_TEXT, False),
        (OPENAI, Fault.KEY_ECHO_MID_STREAM, True),
        (CLAUDE, Fault.KEY_ECHO_JSON, False),
        (CLAUDE, Fault.KEY_ECHO_MID_STREAM, True),
    ]:  # the key echoed once more of each kind, so that this test means something on its own too
        gw.upstream.reset()
        gw.upstream.inject(fault)
        assert call(gw, model, stream).status in (200, 502)
        assert gw.upstream.attempts(fault) == 1

    marker = call(gw)  # a trace written last: the files below must hold it
    assert marker.status == 200, marker.raw
    db, wal = gw.daemon.db, Path(f"{gw.daemon.db}-wal")
    assert wal.exists() and wal.stat().st_size > 0, "the WAL is empty: the grep would prove nothing"
    written = db.read_bytes() + wal.read_bytes()
    assert marker.marker.encode() in written, "the last trace is in neither the database nor its WAL"
    for path in (db, wal, gw.daemon.log_path):
        assert path is not None
        assert_no_key(path.read_bytes().decode("latin-1"), str(path))
    assert "trace" in gw.events.text()
    assert_no_key(gw.events.text(), "the /admin/events stream")
