"""Local-model tokens/s through the gateway vs raw llama-cpp-python, in the same run.

The daemon serves `package:gemma3-270m` (chat_format gemma, n_threads 2); this process loads the
same GGUF with the same settings. Same prompt, greedy, fixed max_tokens; raw and gateway runs
alternate (ABBA), tokens/s = completion_tokens / wall time of the whole call; medians and ratio.

    .venv/bin/python benchmarks/local_model.py [--pairs 6] [--max-tokens 64]
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from typing import Any

from _harness import REPO, Client, Processes, create_key, median, start_daemon

sys.path.insert(0, str(REPO))
from daemon.providers.model_files import resolve_model_path  # noqa: E402

MODEL_PATH = "package:gemma3-270m"
CHAT_FORMAT, N_THREADS, N_CTX = "gemma", 2, 4096  # n_ctx: the daemon's default
MESSAGES = [{"role": "user", "content": "Write a long story about a lighthouse keeper who finds a bottle."}]
TARGET = 0.95

PROFILE = f"""\
name: bench-local
default_model: local-gemma
models:
  local-gemma:
    provider: llama_cpp
    path: "{MODEL_PATH}"
    chat_format: {CHAT_FORMAT}
    n_threads: {N_THREADS}
    n_ctx: {N_CTX}
    load: eager
"""


class Raw:
    def __init__(self, max_tokens: int) -> None:
        from llama_cpp import Llama

        path = resolve_model_path("local-gemma", MODEL_PATH)
        self.llm = Llama(model_path=str(path), n_ctx=N_CTX, n_threads=N_THREADS, chat_format=CHAT_FORMAT,
                         verbose=False)  # fmt: skip
        self.args: dict[str, Any] = {"messages": MESSAGES, "temperature": 0.0, "max_tokens": max_tokens}
        self.tokens = 0  # from the non-streaming result: greedy, so the stream samples the same tokens

    def run(self, stream: bool) -> tuple[float, int, str]:
        started = time.perf_counter()
        if stream:
            chunks: Any = self.llm.create_chat_completion(**self.args, stream=True)
            parts = [c["choices"][0]["delta"].get("content") or "" for c in chunks]
            return time.perf_counter() - started, self.tokens, "".join(parts)
        result: Any = self.llm.create_chat_completion(**self.args)
        elapsed = time.perf_counter() - started
        self.tokens = result["usage"]["completion_tokens"]
        return elapsed, self.tokens, result["choices"][0]["message"]["content"]


class Gateway:
    def __init__(self, port: int, key: str, max_tokens: int) -> None:
        self.port, self.key, self.max_tokens = port, key, max_tokens

    def run(self, stream: bool) -> tuple[float, int, str]:
        body: dict[str, Any] = {"model": "local-gemma", "messages": MESSAGES, "temperature": 0.0,
                                "max_tokens": self.max_tokens}  # fmt: skip
        if stream:
            body |= {"stream": True, "stream_options": {"include_usage": True}}
        raw = Client.build("POST", "/v1/chat/completions", json.dumps(body).encode(),
                           {"authorization": f"Bearer {self.key}"})  # fmt: skip
        with Client(self.port, timeout=600) as client:  # a fresh connection: the idle one may have timed out
            started = time.perf_counter()
            status, _, payload = client.send(raw)
            elapsed = time.perf_counter() - started
        if status != 200:
            raise RuntimeError(f"gateway answered {status}: {payload[:300]!r}")
        if not stream:
            data = json.loads(payload)
            return elapsed, data["usage"]["completion_tokens"], data["choices"][0]["message"]["content"]
        text, tokens = [], 0
        for event in payload.split(b"\n\n"):
            if not event.startswith(b"data: ") or event == b"data: [DONE]":
                continue
            chunk = json.loads(event[6:])
            if chunk.get("usage"):
                tokens = chunk["usage"]["completion_tokens"]
            for choice in chunk.get("choices") or []:
                text.append(choice["delta"].get("content") or "")
        return elapsed, tokens, "".join(text)


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--pairs", type=int, default=6, help="raw/gateway pairs per mode (ABBA order)")
    parser.add_argument("--max-tokens", type=int, default=64)
    args = parser.parse_args()
    started = time.time()
    with Processes() as procs:
        (procs.dir / "profile").mkdir()
        (procs.dir / "data").mkdir()
        profile, db = procs.dir / "profile" / "local.yaml", procs.dir / "data" / "local.db"
        profile.write_text(PROFILE)
        key = create_key(db, "bench")
        port = start_daemon(procs, profile, db, timeout=300)
        raw, gateway = Raw(args.max_tokens), Gateway(port, key, args.max_tokens)
        runners: dict[str, Raw | Gateway] = {"raw": raw, "gateway": gateway}
        settings = f"n_threads {N_THREADS}, chat_format {CHAT_FORMAT}, max_tokens {args.max_tokens}, greedy"
        print(f"daemon :{port} serving {MODEL_PATH} vs raw llama-cpp-python here ({settings})", flush=True)
        results: dict[tuple[str, str], list[float]] = {}
        texts: dict[tuple[str, str], set[str]] = {}
        for mode in ("non-streaming", "streaming"):
            for name in ("raw", "gateway"):  # warm-up, not counted
                runners[name].run(mode == "streaming")
            for i in range(args.pairs):
                for name in ("raw", "gateway") if i % 2 == 0 else ("gateway", "raw"):
                    elapsed, tokens, text = runners[name].run(mode == "streaming")
                    results.setdefault((name, mode), []).append(tokens / elapsed)
                    texts.setdefault((name, mode), set()).add(text)
                    print(f"  {mode:13} {name:7} {tokens:4d} tokens in {elapsed:6.2f} s = "
                          f"{tokens / elapsed:6.1f} tok/s", flush=True)  # fmt: skip
    # Noise on a shared machine only slows a run down: the best run of each side is a useful second view.
    header = f"{'raw tok/s':>11}{'gateway tok/s':>15}{'ratio':>8}{'best raw':>10}{'best gw':>9}{'ratio':>8}"
    print(f"\n{'':16}{header}   target >= {TARGET:.0%} (medians)")
    ok = True
    for mode in ("non-streaming", "streaming"):
        raw_runs, gw_runs = results[("raw", mode)], results[("gateway", mode)]
        r, g = median(raw_runs), median(gw_runs)
        ok &= g / r >= TARGET
        print(f"{mode:16}{r:11.1f}{g:15.1f}{g / r:8.1%}{max(raw_runs):10.1f}{max(gw_runs):9.1f}"
              f"{max(gw_runs) / max(raw_runs):8.1%}   {'PASS' if g / r >= TARGET else 'FAIL'}")  # fmt: skip
    outputs = set().union(*texts.values())
    print(f"same greedy output everywhere: {'yes' if len(outputs) == 1 else f'no ({len(outputs)} variants)'}")
    print(
        "targets:",
        "met" if ok else "NOT met",
        f"({time.time() - started:.0f} s, {time.strftime('%Y-%m-%d %H:%M')})",
    )
    return 0 if ok else 1


if __name__ == "__main__":
    raise SystemExit(main())
