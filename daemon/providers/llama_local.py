"""Local GGUF models through llama-cpp-python, in process.

A `Llama` is blocking and not thread-safe, so each model lives on one dedicated worker thread
that runs jobs from a queue, one at a time. The event loop only submits jobs and awaits their
results; streamed text comes back one `call_soon_threadsafe` per piece. A consumer that goes
away sets a cancel flag that the worker checks between tokens.

llama_cpp is imported when a model loads, not when this module is imported: a profile with
remote models only never pays for it.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import logging
import os
import queue
import threading
import time
from collections.abc import AsyncGenerator, Callable, Generator, Iterator, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, TypeVar, cast

from daemon.config.schema import LlamaCppModel
from daemon.core.confidence import from_probabilities
from daemon.core.cost import Usage
from daemon.errors import GatewayError, InvalidRequest, ModelUnavailable, ProviderError
from daemon.providers.base import INTERACTIVE, Call, Chunk, Completion, Embeddings
from daemon.providers.llama_translate import (
    Finished,
    chat_arguments,
    completion_from,
    completion_id,
    embedding_data,
    embedding_inputs,
    encoding_format,
)
from daemon.providers.model_files import describe_source, resolve_model_path
from daemon.providers.wire import StreamFrame

if TYPE_CHECKING:
    from llama_cpp import Llama

log = logging.getLogger(__name__)

T = TypeVar("T")

# --- the worker thread ---------------------------------------------------------------------


STOP = 1 << 30  # after every job, of any priority


class _Worker:
    """The one thread that touches a model: jobs run one at a time, interactive calls before
    background ones (Call.priority), each priority in submission order. A call that arrives while
    background jobs wait goes before them: it waits at most for the job in progress."""

    def __init__(self, name: str) -> None:
        self._jobs: queue.PriorityQueue[tuple[int, int, Callable[[], None] | None]] = queue.PriorityQueue()
        self._order = itertools.count()  # ties broken by arrival (and jobs are never compared)
        # daemon: a generation still running at interpreter exit must not hold the process
        self._thread = threading.Thread(target=self._run, name=f"llama:{name}", daemon=True)
        self._thread.start()

    def submit(self, job: Callable[[], None], priority: int = INTERACTIVE) -> None:
        self._jobs.put((priority, next(self._order), job))

    def stop(self) -> None:
        """The thread exits once the jobs queued before this have run."""
        self._jobs.put((STOP, next(self._order), None))

    def _run(self) -> None:
        while (job := self._jobs.get()[2]) is not None:
            job()


@dataclass(frozen=True, slots=True)
class _Failed:
    """A job's exception, carried as a value so a result is never mistaken for one."""

    error: GatewayError


def _post(loop: asyncio.AbstractEventLoop, callback: Callable[..., object], *args: object) -> None:
    """From the worker to the event loop; once the loop has closed nobody is waiting."""
    with contextlib.suppress(RuntimeError):
        loop.call_soon_threadsafe(callback, *args)


def _settle(future: asyncio.Future[Any], outcome: object) -> None:
    if future.done():  # the caller was cancelled meanwhile
        return
    if isinstance(outcome, _Failed):
        future.set_exception(outcome.error)
    else:
        future.set_result(outcome)


# --- metering generation -------------------------------------------------------------------


@dataclass(slots=True)
class _Generation:
    """One chat call's bookkeeping; written by the worker thread only."""

    cancel: threading.Event = field(default_factory=threading.Event)
    prompt_tokens: int = 0
    sampled: int = 0
    last_token: int = -1
    cancelled: bool = False


@dataclass(slots=True)
class _Meter:
    current: _Generation | None = None


def _install_meter(llm: Llama, meter: _Meter) -> None:
    """Wrap `llm.generate` so that each sampled token is counted and cancel is checked after it.

    create_chat_completion takes no stopping_criteria, but it samples through `self.generate`;
    wrapping that generator costs one Python frame hop per token (a logits_processor would copy
    the whole vocabulary's scores per token instead).
    """
    inner = llm.generate

    def generate(tokens: Sequence[int], *args: Any, **kwargs: Any) -> Iterator[int]:
        generation = meter.current
        tokens_out = inner(tokens, *args, **kwargs)
        if generation is None:
            yield from tokens_out
            return
        generation.prompt_tokens = len(tokens)
        try:
            for token in tokens_out:
                generation.sampled += 1
                generation.last_token = token
                yield token
                if generation.cancel.is_set():
                    generation.cancelled = True
                    return
        finally:
            tokens_out.close()

    llm.generate = generate  # type: ignore[method-assign,assignment]


def _top_probability(into: list[float]) -> Any:
    """A logits_processor that keeps each step's top-token probability and changes nothing: the
    softmax's maximum is 1 / sum(exp(scores - max)), one pass over the vocabulary's scores."""
    import llama_cpp
    import numpy as np

    def keep(_input_ids: Any, scores: Any) -> Any:
        top = scores.max()
        into.append(float(1.0 / np.exp(scores - top).sum()))
        return scores

    return llama_cpp.LogitsProcessorList([keep])


def _completion_tokens(llm: Llama, generation: _Generation) -> int:
    """Sampled tokens minus a final end-of-generation token, as llama's own usage counts them."""
    import llama_cpp

    if generation.sampled and llama_cpp.llama_vocab_is_eog(
        llama_cpp.llama_model_get_vocab(llm.model), generation.last_token
    ):
        return generation.sampled - 1
    return generation.sampled


# --- the provider ----------------------------------------------------------------------------


class LlamaCppProvider:
    """One local GGUF model: chat or embeddings, loaded now (`start`) or on the first call."""

    kind = "llama_cpp"

    def __init__(self, name: str, config: LlamaCppModel) -> None:
        self.name = name
        self.config = config
        self.load_seconds: float | None = None
        self.load_error: str | None = None
        self.activity: str | None = None  # "converting" or "loading" while the worker prepares the model
        # Called on the worker thread when `activity` changes (the daemon tells the console).
        self.on_activity: Callable[[LlamaCppProvider], None] | None = None
        self.generated_tokens = 0  # tokens sampled by all generations, cancelled ones too
        self.cancelled_generations = 0  # generations stopped early because their caller left
        self._llm: Llama | None = None
        self._meter = _Meter()
        self._worker: _Worker | None = None
        self._closed = False

    @property
    def loaded(self) -> bool:
        return self._llm is not None

    async def start(self) -> None:
        """Load the model now. A failure is logged and kept in `load_error`, never raised: the
        daemon keeps serving, calls to this model answer 503 and retry the load."""
        try:
            await self._run(lambda llm: None)
        except ModelUnavailable as exc:
            log.warning("%s", exc.message)

    async def idle(self) -> None:
        """Wait until every job submitted before this call has finished."""
        if self._worker is not None:
            await self._run(lambda llm: None, needs_model=False, priority=STOP - 1)

    async def complete(self, call: Call) -> Completion:
        self._require(embedding=False)
        arguments = chat_arguments(call.body, self.config.chat_format, self.config.repeat_penalty)
        generation = _Generation()
        probabilities: list[float] = []
        if call.confidence:
            arguments["logits_processor"] = _top_probability(probabilities)
        response = await self._run(
            lambda llm: self._chat(llm, arguments, generation), generation.cancel, priority=call.priority
        )
        completion = completion_from(call.model, response)
        if call.confidence:
            # The last step chose the end of the answer: the content is what is judged.
            completion.confidence = from_probabilities(probabilities[:-1] or probabilities)
        return completion

    async def stream(self, call: Call) -> AsyncGenerator[Chunk]:
        self._require(embedding=False)
        arguments = chat_arguments(call.body, self.config.chat_format, self.config.repeat_penalty)
        generation = _Generation()
        loop = asyncio.get_running_loop()
        events: asyncio.Queue[str | Finished | _Failed] = asyncio.Queue()

        def emit(item: object) -> None:
            _post(loop, events.put_nowait, item)

        def job(llm: Llama) -> Finished:
            return self._chat_stream(llm, arguments, generation, emit)

        self._submit(job, emit, generation.cancel, priority=call.priority)
        frame = StreamFrame(completion_id(), int(time.time()), call.model)
        try:
            item = await events.get()
            if isinstance(item, _Failed):  # before any chunk: the gateway can still answer with an error
                raise item.error
            yield Chunk(payload=frame.delta({"role": "assistant", "content": ""}))
            while isinstance(item, str):
                yield Chunk(payload=frame.delta({"content": item}), text=item)
                item = await events.get()
            if isinstance(item, _Failed):
                raise item.error
            yield Chunk(payload=frame.delta({}, item.finish_reason), finish_reason=item.finish_reason)
            yield Chunk(payload=frame.payload([], item.usage), usage=item.usage, usage_only=True)
        finally:
            generation.cancel.set()  # a no-op when finished; stops the worker when the client left

    async def embed(self, call: Call) -> Embeddings:
        self._require(embedding=True)
        texts = embedding_inputs(call.body)
        encoding = encoding_format(call.body)
        data, count = await self._run(lambda llm: self._embed(llm, texts, encoding), priority=call.priority)
        body = {
            "object": "list",
            "data": data,
            "model": call.model,
            "usage": {"prompt_tokens": count, "total_tokens": count},
        }
        return Embeddings(body=body, usage=Usage(prompt_tokens=count))

    async def aclose(self) -> None:
        """Stop generating, fail the queued jobs, free the model and end the worker thread."""
        if self._closed:
            return
        self._closed = True
        current = self._meter.current
        if current is not None:
            current.cancel.set()
        worker, self._worker = self._worker, None
        if worker is None:
            return
        loop = asyncio.get_running_loop()
        freed: asyncio.Future[Any] = loop.create_future()

        def free() -> None:
            llm, self._llm = self._llm, None
            if llm is not None:
                llm.close()
            _post(loop, _settle, freed, None)

        worker.submit(free)
        worker.stop()
        await freed

    # --- on the event loop ---

    def _require(self, *, embedding: bool) -> None:
        if self.config.embedding == embedding:
            return
        if self.config.embedding:
            message = f"Model {self.name!r} is an embedding model; it cannot chat. Use /v1/embeddings."
        else:
            message = f"Model {self.name!r} is a chat model; it cannot embed. Use an embedding model."
        raise InvalidRequest(message, param="model")

    async def _run(
        self, task: Callable[[Llama], T], cancel: threading.Event | None = None, *,
        needs_model: bool = True, priority: int = INTERACTIVE,
    ) -> T:  # fmt: skip
        loop = asyncio.get_running_loop()
        future: asyncio.Future[T] = loop.create_future()

        def deliver(outcome: object) -> None:
            _post(loop, _settle, future, outcome)

        self._submit(task, deliver, cancel, priority, needs_model)
        try:
            return await future
        except asyncio.CancelledError:
            if cancel is not None:
                cancel.set()  # the caller left (client disconnected): stop generating
            raise

    def _submit(
        self,
        task: Callable[[Llama], Any],
        deliver: Callable[[object], None],
        cancel: threading.Event | None,
        priority: int = INTERACTIVE,
        needs_model: bool = True,
    ) -> None:
        """Queue `task` for the worker; `deliver` is called on the worker with its outcome."""
        if self._closed:
            raise ModelUnavailable(f"Model {self.name!r} has been shut down.")

        def job() -> None:
            if cancel is not None and cancel.is_set():
                return  # the caller left while this waited in the queue
            outcome: object
            try:
                outcome = task(self._model() if needs_model else cast("Llama", None))
            except Exception as exc:
                outcome = _Failed(self._gateway_error(exc))
            deliver(outcome)

        if self._worker is None:
            self._worker = _Worker(self.name)
        self._worker.submit(job, priority)

    # --- on the worker thread ---

    def _model(self) -> Llama:
        if self._closed:
            raise ModelUnavailable(f"Model {self.name!r} has been shut down.")
        if self._llm is None:
            try:
                self._llm = self._load()
            finally:
                self._set_activity(None)  # loaded (or failed): either way the state says which
        return self._llm

    def _set_activity(self, activity: str | None) -> None:
        if activity == self.activity:
            return
        self.activity = activity
        if self.on_activity is not None:
            self.on_activity(self)

    def _load(self) -> Llama:
        started = time.perf_counter()
        # A registry model may need building first (MiniLM is converted to GGUF on first use).
        self._set_activity("converting" if describe_source(self.config.path).needs_conversion else "loading")
        try:
            path = resolve_model_path(self.name, self.config.path)
        except ModelUnavailable as exc:
            self.load_error = exc.message
            raise
        self._set_activity("loading")
        try:
            from llama_cpp import Llama

            llm = Llama(
                model_path=str(path),
                n_ctx=self.config.n_ctx,
                n_threads=self.config.n_threads or os.cpu_count(),  # llama defaults to half the cores
                embedding=self.config.embedding,
                chat_format=self.config.chat_format,
                verbose=False,
            )
        except Exception as exc:  # llama raises ValueError for a file it cannot read as a GGUF
            self.load_error = f"Model {self.name!r} failed to load from {str(path)!r}: {exc}"
            raise ModelUnavailable(self.load_error) from exc
        _install_meter(llm, self._meter)
        self.load_seconds = time.perf_counter() - started
        self.load_error = None
        log.info("Loaded model %r from %s in %.2f s", self.name, path, self.load_seconds)
        return llm

    def _gateway_error(self, exc: Exception) -> GatewayError:
        if isinstance(exc, GatewayError):
            return exc
        if isinstance(exc, ValueError):  # llama's word for a request it cannot serve (context, grammar)
            code = "context_length_exceeded" if "context window" in str(exc) else None
            param = "input" if self.config.embedding else "messages"
            return InvalidRequest(f"Model {self.name!r}: {exc}", param=param, code=code)
        log.error("Model %r failed", self.name, exc_info=exc)
        return ProviderError(f"Model {self.name!r} failed: {type(exc).__name__}: {exc}")

    def _chat(self, llm: Llama, arguments: dict[str, Any], generation: _Generation) -> dict[str, Any]:
        self._meter.current = generation
        try:
            return cast("dict[str, Any]", llm.create_chat_completion(**arguments))
        finally:
            self._count(generation)

    def _chat_stream(
        self, llm: Llama, arguments: dict[str, Any], generation: _Generation, emit: Callable[[object], None]
    ) -> Finished:
        self._meter.current = generation
        finish_reason = "stop"
        chunks = cast("Generator[dict[str, Any]]", llm.create_chat_completion(**arguments, stream=True))
        try:
            for chunk in chunks:
                choice = chunk["choices"][0]
                content = choice["delta"].get("content")
                if content:
                    emit(content)
                if choice["finish_reason"] is not None:
                    finish_reason = choice["finish_reason"]
                if generation.cancel.is_set():
                    generation.cancelled = True
                    break
        finally:
            chunks.close()  # closing llama's generator ends its sampling loop
            self._count(generation)
        return Finished(finish_reason, Usage(generation.prompt_tokens, _completion_tokens(llm, generation)))

    def _count(self, generation: _Generation) -> None:
        self._meter.current = None
        self.generated_tokens += generation.sampled
        if generation.cancelled:
            self.cancelled_generations += 1

    def _embed(self, llm: Llama, texts: list[str], encoding: str) -> tuple[list[dict[str, Any]], int]:
        vectors, count = llm.embed(texts, return_count=True)
        return embedding_data(vectors, encoding), int(count)
