"""/admin/experiments (admin keys only): create an experiment on a prompt, drive its lifecycle
(shadow, start, ramp, promote, stop: each recorded with who and when), and read its results: per
arm its figures, each arm against the control on every metric with its test, intervals and
always-valid p-value, the winner or why not yet, and the metric over time."""

from __future__ import annotations

import asyncio
import time
from typing import Any

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from daemon.api.common import JSON, admin, read_json, services_of, who
from daemon.api.spend import window_of
from daemon.core.experiment import TRANSITIONS, Arm, Experiment, LifecycleError, Scope
from daemon.errors import Conflict, InvalidRequest, NotFound
from daemon.experiments.summary import METRICS, summarize
from daemon.prompts.spec import NAME
from daemon.services import Services
from daemon.storage import experiments as store


async def list_experiments(request: Request) -> Response:
    await admin(request)
    book = services_of(request).experiments
    return JSON({"object": "list", "data": [_described(e) for e in book.experiments.values()]})


async def create(request: Request) -> Response:
    principal = await admin(request)
    services = services_of(request)
    body = await read_json(request)
    experiment = _parse(services, body)
    try:
        await services.experiments.create(experiment, who(principal))
    except LookupError as exc:
        raise Conflict(str(exc), param="name") from None
    return JSON(_described(experiment), status_code=201)


async def show(request: Request) -> Response:
    """?window=today|7d|30d: the experiment, its transitions and its results over the window."""
    await admin(request)
    services = services_of(request)
    experiment = _get(services, request.path_params["name"])
    window = window_of(request.query_params) if "window" in request.query_params else None
    bucket = window.bucket_seconds if window else 3600.0
    since, results = await _results(services, experiment, window.since if window else None, bucket)
    return JSON({
        **_described(experiment), "results": results, "since": since, "bucket_seconds": bucket,
        "transitions": await store.transitions(services.reader, experiment.name),
        "shadows": await _shadows(services, experiment.name),
    })  # fmt: skip


async def action(request: Request) -> Response:
    """POST {"share": 0.2 | "arm": "candidate" | "note": "..."} to shadow, start, ramp, promote, stop."""
    principal = await admin(request)
    services = services_of(request)
    name, verb = request.path_params["name"], request.path_params["action"]
    if verb not in TRANSITIONS:
        raise NotFound(f"No action {verb!r}: {', '.join(TRANSITIONS)}.", param="action")
    body = await read_json(request) if int(request.headers.get("content-length") or 0) else {}
    if not isinstance(body, dict):
        raise InvalidRequest("The request body must be a JSON object.")
    share = body.get("share")
    if share is not None and (not isinstance(share, int | float) or not 0 < share < 1):
        raise InvalidRequest("Invalid 'share': a number between 0 and 1.", param="share")
    experiment = _get(services, name)
    arm = body.get("arm")
    if verb == "promote" and arm is None:  # the declared winner, or a refusal that says why not
        _, results = await _results(services, experiment, None, 3600.0)
        arm = results["winner"]
        if arm is None:
            raise Conflict(f"No winner is declared yet ({results['verdict']}): name the arm to promote.",
                           param="arm")  # fmt: skip
    try:
        after = await services.experiments.act(
            name, verb, who(principal), share=share, arm=arm, note=body.get("note")
        )
    except LifecycleError as exc:
        raise Conflict(str(exc), param="action") from None
    except LookupError as exc:
        raise InvalidRequest(str(exc), param="arm") from None
    if verb == "promote":  # the label moved in the database: the registry reads it again
        await services.prompts.catch_up()
    return JSON(_described(after))


async def _results(
    services: Services, experiment: Experiment, since: float | None, bucket: float
) -> tuple[float, dict[str, Any]]:
    """Read what is new and compute, off the event loop (a first read of 100k calls takes a while).
    Without `since`: the whole experiment, its buckets from its first call."""

    def work() -> tuple[float, dict[str, Any]]:
        calls = services.experiment_calls.calls(experiment, since if since is not None else 0.0)
        start = since if since is not None else float(calls.ts[0]) if calls.ts.size else time.time()
        return start, summarize(experiment, calls, start, bucket)

    return await asyncio.to_thread(work)


def _parse(services: Services, body: Any) -> Experiment:
    if not isinstance(body, dict):
        raise InvalidRequest("The request body must be a JSON object.")
    unknown = set(body) - {
        "name",
        "prompt",
        "arms",
        "metric",
        "min_sample",
        "alpha",
        "label",
        "scope",
        "shadow_share",
    }
    if unknown:
        raise InvalidRequest(f"Unknown field(s): {', '.join(sorted(unknown))}.", param=sorted(unknown)[0])
    name, prompt = body.get("name"), body.get("prompt")
    if not isinstance(name, str) or not NAME.match(name):
        raise InvalidRequest("Invalid 'name': letters, digits, '_', '.', '-' (at most 64).", param="name")
    registry = services.prompts.registry
    if prompt not in registry.versions:
        raise NotFound(f"There is no prompt {prompt!r}.", param="prompt")
    arms = [_arm(services, prompt, raw, index) for index, raw in enumerate(body.get("arms") or [])]
    if len(arms) < 2 or len({a.name for a in arms}) != len(arms):
        raise InvalidRequest(
            "'arms': at least two, with different names (the first is the control).", param="arms"
        )
    metric = body.get("metric", "rating")
    if metric not in METRICS:
        raise InvalidRequest(f"Invalid 'metric': one of {', '.join(METRICS)}.", param="metric")
    min_sample, alpha = body.get("min_sample", 100), body.get("alpha", 0.05)
    if type(min_sample) is not int or min_sample < 2:
        raise InvalidRequest("Invalid 'min_sample': an integer >= 2.", param="min_sample")
    if not isinstance(alpha, int | float) or not 0 < alpha <= 0.2:
        raise InvalidRequest("Invalid 'alpha': a number in (0, 0.2].", param="alpha")
    share = body.get("shadow_share", 1.0)
    if not isinstance(share, int | float) or not 0 < share <= 1:
        raise InvalidRequest("Invalid 'shadow_share': a number in (0, 1].", param="shadow_share")
    label = body.get("label", "production")
    if not isinstance(label, str) or not NAME.match(label):
        raise InvalidRequest("Invalid 'label'.", param="label")
    return Experiment(
        name,
        prompt,
        tuple(arms),
        "draft",
        float(share),
        metric,
        min_sample,
        float(alpha),
        label,
        _scope(body),
    )


def _arm(services: Services, prompt: str, raw: Any, index: int) -> Arm:
    where = f"arms[{index}]"
    if not isinstance(raw, dict) or set(raw) - {"name", "version", "model", "weight"}:
        raise InvalidRequest(f"Invalid '{where}': {{name, version, model, weight}}.", param=where)
    name, version, model, weight = (
        raw.get("name"),
        raw.get("version"),
        raw.get("model"),
        raw.get("weight", 1.0),
    )
    if not isinstance(name, str) or not NAME.match(name):
        raise InvalidRequest(f"Invalid '{where}.name'.", param=f"{where}.name")
    if type(version) is not int or version not in services.prompts.registry.versions[prompt]:
        raise NotFound(f"Prompt {prompt!r} has no version {version!r} ({where}).", param=f"{where}.version")
    profile = services.profile
    if model is not None and model not in profile.models and model not in profile.routes:
        raise NotFound(
            f"The model {model!r} ({where}) is not a model or route of the profile.", param=f"{where}.model"
        )
    if not isinstance(weight, int | float) or weight <= 0:
        raise InvalidRequest(f"Invalid '{where}.weight': a positive number.", param=f"{where}.weight")
    return Arm(name, version, model, float(weight))


def _scope(body: dict[str, Any]) -> Scope:
    raw = body.get("scope") or {}
    if not isinstance(raw, dict) or set(raw) - {"keys", "users", "teams"}:
        raise InvalidRequest("Invalid 'scope': {keys, users, teams} lists.", param="scope")
    lists = {k: raw.get(k) or [] for k in ("keys", "users", "teams")}
    if not all(isinstance(v, list) and all(isinstance(x, str) for x in v) for v in lists.values()):
        raise InvalidRequest("Invalid 'scope': lists of names.", param="scope")
    return Scope(tuple(lists["keys"]), tuple(lists["users"]), tuple(lists["teams"]))


def _described(e: Experiment) -> dict[str, Any]:
    return {
        "object": "experiment", "name": e.name, "prompt": e.prompt, "state": e.state,
        "arms": [a.as_dict() for a in e.arms], "shares": e.shares(), "shadow_share": e.shadow_share,
        "metric": e.metric, "min_sample": e.min_sample, "alpha": e.alpha, "label": e.label,
        "scope": e.scope.as_dict(), "winner": e.winner,
    }  # fmt: skip


def _get(services: Services, name: str) -> Experiment:
    try:
        return services.experiments.get(name)
    except LookupError as exc:
        raise NotFound(str(exc), param="name") from None


async def _shadows(services: Services, name: str) -> list[dict[str, Any]]:
    async with services.reader.execute(
        "SELECT arm, COUNT(*), SUM(status != 'ok'), AVG(latency_ms), SUM(cost_usd) FROM shadow_calls"
        " WHERE experiment = ? GROUP BY arm",
        (name,),
    ) as cursor:
        return [
            {"arm": arm, "calls": calls, "errors": errors, "mean_latency_ms": latency, "cost_usd": cost}
            for arm, calls, errors, latency, cost in await cursor.fetchall()
        ]


routes = [
    Route("/admin/experiments", list_experiments, methods=["GET"]),
    Route("/admin/experiments", create, methods=["POST"]),
    Route("/admin/experiments/{name}", show, methods=["GET"]),
    Route("/admin/experiments/{name}/{action}", action, methods=["POST"]),
]
