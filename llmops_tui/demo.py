"""`llmops demo`: a realistic mixed workload through the real gateway, bounded in time and count.

Varied prompts, each with paraphrases; some sent again word for word (what an exact cache would
catch) and some paraphrased (a semantic cache); streaming and not; several users; a few calls
that fail as clients' calls do (an unknown model); and some of the answers rated.
"""

from __future__ import annotations

import asyncio
import contextlib
import random
import statistics
import sys
import time
from dataclasses import dataclass, field
from typing import Any

import httpx

USERS = ("alice", "bob", "carol", "dave", "erin")
SYSTEMS = (
    None,
    "You are a concise assistant. Answer in at most three sentences.",
    "You are a helpful customer-support agent for Acme Cloud.",
    "You are a senior Python developer. Prefer short code examples.",
)
# Each entry: the same question asked in different words.
PROMPTS: tuple[tuple[str, ...], ...] = (
    ("How do I reset my password?", "I forgot my password. How can I change it?",
     "What are the steps to reset a forgotten password?"),
    ("What is your refund policy for annual plans?", "Can I get my money back on a yearly subscription?"),
    ("Write a Python function that checks whether a string is a palindrome.",
     "Give me Python code to test if a word reads the same backwards."),
    ("Explain the difference between a list and a tuple in Python.",
     "Python: when should I use a tuple instead of a list?"),
    ("Summarize in one sentence: The quarterly report shows revenue up 12% while costs fell 3%, "
     "driven by lower cloud spend and a new pricing tier.",
     "Give a one-line summary: revenue grew 12% this quarter and costs dropped 3% thanks to cheaper "
     "cloud usage and new pricing."),
    ("Translate to French: Where is the train station?",
     "How do you say 'where is the train station' in French?"),
    ("Extract the city and the date from: 'Let's meet in Lisbon on 12 March at noon.'",
     "From the sentence 'Let's meet in Lisbon on 12 March at noon', which city and which day?"),
    ("What is a good name for a coffee shop next to a library?",
     "Suggest a name for a café beside a library."),
    ("Write a SQL query that returns the ten customers with the highest total order value.",
     "SQL: top 10 customers by sum of their orders?"),
    ("Why is the sky blue?", "Explain briefly why the sky looks blue during the day."),
    ("Draft a polite reply declining a meeting invitation for Friday.",
     "Write a short, friendly email saying I can't attend Friday's meeting."),
    ("List three tips for writing clear commit messages.",
     "How do I write better git commit messages? Three tips."),
)  # fmt: skip
COMMENTS = (
    "concise and correct",
    "too long",
    "wrong language",
    "missed the point",
    "great example",
    None,
    None,
)


@dataclass(frozen=True, slots=True)
class DemoOptions:
    url: str
    keys: list[str] = field(default_factory=list)
    rate: float = 2.0
    duration: float = 60.0
    model: str | None = None
    max_requests: int | None = None
    concurrency: int = 8
    seed: int | None = None


@dataclass(slots=True)
class Tally:
    sent: int = 0
    ok: int = 0
    errors: int = 0
    streamed: int = 0
    rated: int = 0
    latencies: list[float] = field(default_factory=list)

    def line(self, left: float) -> str:
        p50 = f"{statistics.median(self.latencies) * 1000:.0f} ms" if self.latencies else "-"
        return (f"demo: {self.sent} sent, {self.ok} ok, {self.errors} failed, {self.streamed} streamed, "
                f"{self.rated} rated, p50 {p50}" + (f", {left:.0f} s left" if left > 0 else ""))  # fmt: skip


class Workload:
    """Chooses the next call: mostly fresh phrasings, some exact repeats, a few bad calls."""

    def __init__(self, rng: random.Random, models: list[str], embedding_model: str | None,
                 end_users: bool = True) -> None:  # fmt: skip
        """`models`: the first takes most calls (as a default model does); the others share the rest.
        `end_users`: send OpenAI's `user` field (an app's end-user id); off when keys name the users."""
        self.rng, self.models, self.embedding_model = rng, models, embedding_model
        self.end_users = end_users
        self.sent: list[dict[str, Any]] = []

    def next_call(self) -> tuple[str, dict[str, Any]]:
        rng = self.rng
        roll = rng.random()
        if self.embedding_model and roll < 0.08:
            text = rng.choice(rng.choice(PROMPTS))
            return "/v1/embeddings", self._user({"model": self.embedding_model, "input": text})
        if self.sent and roll < 0.30:
            body = dict(rng.choice(self.sent))  # asked again, word for word
        else:
            messages = []
            system = rng.choice(SYSTEMS)
            if system:
                messages.append({"role": "system", "content": system})
            messages.append({"role": "user", "content": rng.choice(rng.choice(PROMPTS))})
            model = (
                self.models[0] if len(self.models) == 1 or rng.random() < 0.6 else rng.choice(self.models[1:])
            )
            body = {"model": model, "messages": messages, "max_tokens": rng.choice((32, 48, 64)),
                    "temperature": rng.choice((0.0, 0.2, 0.7))}  # fmt: skip
            body = self._user(body)
            self.sent.append(body)
        body = {**body, "stream": rng.random() < 0.4}
        if body["stream"]:
            body["stream_options"] = {"include_usage": True}
        if rng.random() < 0.03:
            body["model"] = "gpt-imaginary"  # a typo'd model name: the gateway answers 404 and traces it
        return "/v1/chat/completions", body

    def _user(self, body: dict[str, Any]) -> dict[str, Any]:
        return {**body, "user": self.rng.choice(USERS)} if self.end_users else body


async def _call(http: httpx.AsyncClient, path: str, body: dict[str, Any]) -> tuple[int, str | None]:
    """(HTTP status, trace id); a stream is read to its end as a client would."""
    if not body.get("stream"):
        response = await http.post(path, json=body)
        return response.status_code, response.headers.get("x-llmops-trace-id")
    async with http.stream("POST", path, json=body) as response:
        async for _ in response.aiter_lines():
            pass
        return response.status_code, response.headers.get("x-llmops-trace-id")


async def _models(http: httpx.AsyncClient) -> tuple[list[str], list[str]]:
    """(chat models, embedding models) the daemon serves; its default chat model first."""
    response = await http.get("/admin/status")
    if response.status_code == 200:
        status = response.json()
        default = status["profile"].get("default_model")
        models = sorted(status["models"], key=lambda m: m["name"] != default)
        return [m["name"] for m in models if not m["embedding"]], [
            m["name"] for m in models if m["embedding"]
        ]
    listed = (await http.get("/v1/models")).json().get("data", [])
    return [m["id"] for m in listed], []


async def run_demo(options: DemoOptions) -> int:
    rng = random.Random(options.seed)
    keys: list[str | None] = [*options.keys] or [None]
    clients = [
        httpx.AsyncClient(base_url=options.url.rstrip("/"), timeout=httpx.Timeout(120.0),
                          headers={"authorization": f"Bearer {key}"} if key else {})
        for key in keys
    ]  # fmt: skip
    try:
        try:
            chat, embedding = await _models(clients[0])
        except httpx.HTTPError as exc:
            print(f"llmops: no daemon answering at {options.url} ({type(exc).__name__}). "
                  "Start one: llmops up", file=sys.stderr)  # fmt: skip
            return 1
        # The default model, as a client that names none gets it (--model picks another).
        models = [options.model] if options.model else chat[:1]
        if not models:
            print("llmops: the daemon serves no chat model; pass --model", file=sys.stderr)
            return 1
        workload = Workload(rng, models, embedding[0] if embedding else None, end_users=not options.keys)
        return await _drive(options, rng, clients, workload)
    finally:
        for client in clients:
            await client.aclose()


async def _drive(options: DemoOptions, rng: random.Random, clients: list[httpx.AsyncClient],
                 workload: Workload) -> int:  # fmt: skip
    limit = options.max_requests or max(int(options.rate * options.duration), 1)
    slots = asyncio.Semaphore(options.concurrency)
    tally = Tally()
    tasks: set[asyncio.Task[None]] = set()
    print(f"demo: {', '.join(workload.models)}, up to {options.rate:g} requests/s for {options.duration:g} s "
          f"(at most {limit}) over {len(clients)} key(s)", file=sys.stderr)  # fmt: skip

    async def one(http: httpx.AsyncClient, path: str, body: dict[str, Any]) -> None:
        started = time.monotonic()
        try:
            status, trace_id = await _call(http, path, body)
        except httpx.HTTPError:
            status, trace_id = 0, None
        finally:
            slots.release()
        tally.latencies.append(time.monotonic() - started)
        if status == 200:
            tally.ok += 1
            tally.streamed += bool(body.get("stream"))
            if trace_id and rng.random() < 0.15:
                feedback: dict[str, Any] = {"trace_id": trace_id, "comment": rng.choice(COMMENTS)}
                if rng.random() < 0.3:
                    feedback["thumbs"] = rng.choice(("up", "up", "down"))
                else:
                    feedback["score"] = rng.choice((5, 5, 4, 4, 3, 2, 1))
                with contextlib.suppress(httpx.HTTPError):
                    if (await http.post("/v1/feedback", json=feedback)).status_code == 201:
                        tally.rated += 1
        else:
            tally.errors += 1

    started = time.monotonic()
    deadline = started + options.duration
    next_report = started + 1.0
    while tally.sent < limit and time.monotonic() < deadline:
        await slots.acquire()
        path, body = workload.next_call()
        task = asyncio.create_task(one(rng.choice(clients), path, body))
        tasks.add(task)
        task.add_done_callback(tasks.discard)
        tally.sent += 1
        await asyncio.sleep(rng.expovariate(options.rate))  # Poisson arrivals, as real traffic
        if time.monotonic() >= next_report:
            print(tally.line(deadline - time.monotonic()), file=sys.stderr, flush=True)
            next_report += 1.0
    if tasks:
        await asyncio.wait(tasks, timeout=120)
    print(tally.line(0), file=sys.stderr)
    return 0 if tally.ok else 1
