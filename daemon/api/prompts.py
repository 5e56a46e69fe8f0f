"""/admin/prompts (admin keys only): the prompt registry. List, show a prompt's versions and labels
with each version's usage and ratings, one version in full, diff two, push a new one, move a label
(a release or a rollback), render one with variables (what a call would send)."""

from __future__ import annotations

from typing import Any

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from daemon.api.common import JSON, admin, read_json, services_of, who
from daemon.errors import InvalidRequest, NotFound
from daemon.prompts import reference
from daemon.prompts.registry import Registry, Version
from daemon.prompts.render import RenderError
from daemon.prompts.spec import NAME, SpecError, diff, parse, parse_yaml
from daemon.storage import prompts as store


async def list_prompts(request: Request) -> Response:
    registry = await _registry(request)
    data = []
    for name, versions in sorted(registry.versions.items()):
        latest = versions[max(versions)]
        data.append({**latest.summary(), "versions": len(versions), "labels": registry.labels_of(name)})
    return JSON({"object": "list", "data": data})


async def show(request: Request) -> Response:
    """A prompt's versions (newest first), labels, and each version's calls, errors and ratings."""
    registry = await _registry(request)
    name = request.path_params["name"]
    latest, _ = registry.resolve(name, "latest")
    versions = registry.versions[name]
    services = services_of(request)
    usage = {row["version"]: row for row in await store.usage(services.reader, name)}
    running = services.experiments.running.get(name)
    return JSON({
        "object": "prompt", "name": name, "labels": registry.labels_of(name),
        "moves": await store.label_moves(services.reader, name),
        # while an experiment runs, it (not the label) decides what calls asking for its label get
        "experiment": (
            {"name": running.name, "state": running.state, "label": running.label} if running else None
        ),
        "latest": _full(latest),
        "versions": [
            {**versions[v].summary(), "usage": usage.get(v)} for v in sorted(versions, reverse=True)
        ],
    })  # fmt: skip


async def version(request: Request) -> Response:
    registry = await _registry(request)
    found, _ = registry.resolve(
        request.path_params["name"], version=_int(request.path_params["version"], "version")
    )
    return JSON(_full(found))


async def compare(request: Request) -> Response:
    """?from=V1&to=V2: a unified diff of the two versions as YAML."""
    registry = await _registry(request)
    name, params = request.path_params["name"], request.query_params
    old, _ = registry.resolve(name, version=_int(params.get("from"), "from"))
    new, _ = registry.resolve(name, version=_int(params.get("to"), "to"))
    text = diff(old.spec, new.spec, f"{name}@{old.version}", f"{name}@{new.version}")
    return JSON({"object": "prompt.diff", "name": name, "from": old.version, "to": new.version, "diff": text})


async def push(request: Request) -> Response:
    """A prompt as JSON ({name, messages, model, params, description, labels}) or {"yaml": TEXT}:
    a new version unless the same content is saved already (201 / 200)."""
    principal = await admin(request)
    body = await read_json(request)
    try:
        spec = (
            parse_yaml(body["yaml"], "the pushed prompt")
            if isinstance(body, dict) and "yaml" in body
            else parse(body, "the pushed prompt")
        )
        from daemon.prompts.render import compile_spec

        compile_spec(spec)
    except SpecError as exc:
        raise InvalidRequest(str(exc), param="prompt") from None
    saved = await services_of(request).prompts.save(spec, "api", who(principal), spec.labels)
    answer = {"object": "prompt.version", "name": saved.name, "version": saved.version,
              "created": saved.created, "labels_moved": list(saved.moved)}  # fmt: skip
    return JSON(answer, status_code=201 if saved.created else 200)


async def label(request: Request) -> Response:
    """PUT {"version": N}: point the label at version N (a release, or a rollback)."""
    principal = await admin(request)
    name, label_name = request.path_params["name"], request.path_params["label"]
    if not NAME.match(label_name):
        raise InvalidRequest(f"Invalid label {label_name!r}: letters, digits, '_', '.', '-'.", param="label")
    body = await read_json(request)
    number = _int(body.get("version") if isinstance(body, dict) else None, "version")
    book = services_of(request).prompts
    book.registry.resolve(name, version=number)  # 404 for an unknown prompt or version
    previous = await book.label(name, label_name, number, who(principal))
    return JSON({"object": "prompt.label", "name": name, "label": label_name, "version": number,
                 "previous": previous})  # fmt: skip


async def render(request: Request) -> Response:
    """{"label" | "version", "variables"}: the messages a call would send, rendered."""
    registry = await _registry(request)
    body = await read_json(request)
    asked = {"name": request.path_params["name"], **(body if isinstance(body, dict) else {})}
    reference.check(asked)
    found, used = registry.resolve(asked["name"], asked.get("label"), asked.get("version"))
    try:
        messages = found.compiled.render(asked.get("variables") or {})
    except RenderError as exc:
        message = f"Prompt {found.name!r} version {found.version}: {exc}."
        raise InvalidRequest(message, param="prompt.variables", code="prompt_variables") from None
    return JSON({"object": "prompt.render", "name": found.name, "version": found.version, "label": used,
                 "model": found.spec.model, "params": found.spec.params, "messages": messages})  # fmt: skip


def _full(found: Version) -> dict[str, Any]:
    return {**found.summary(), **found.spec.content(), "yaml": found.spec.as_yaml()}


async def _registry(request: Request) -> Registry:
    await admin(request)
    return services_of(request).prompts.registry


def _int(value: Any, param: str) -> int:
    try:
        number = int(value)
    except (TypeError, ValueError):
        raise InvalidRequest(f"Invalid {param!r}: expected a version number.", param=param) from None
    if number < 1:
        raise NotFound(f"There is no version {number}.", param=param)
    return number


routes = [
    Route("/admin/prompts", list_prompts, methods=["GET"]),
    Route("/admin/prompts", push, methods=["POST"]),
    Route("/admin/prompts/{name}", show, methods=["GET"]),
    Route("/admin/prompts/{name}/versions/{version}", version, methods=["GET"]),
    Route("/admin/prompts/{name}/diff", compare, methods=["GET"]),
    Route("/admin/prompts/{name}/labels/{label}", label, methods=["PUT"]),
    Route("/admin/prompts/{name}/render", render, methods=["POST"]),
]
