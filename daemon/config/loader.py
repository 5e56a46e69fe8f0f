"""Read a profile file into a typed Profile, with errors that name the file, the key path and the reason."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml
from pydantic import ValidationError

from daemon.config.schema import LlamaCppModel, Profile
from daemon.core.cost import reference_price
from daemon.settings import beside


class ProfileError(Exception):
    """The profile cannot be used; the message is meant for the user as it is."""


def load_profile(path: Path) -> Profile:
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise ProfileError(f"{path}: cannot read: {exc.strerror or exc}") from exc
    return parse_profile(text, source=str(path))


def parse_profile(text: str, source: str = "<profile>") -> Profile:
    try:
        raw = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise ProfileError(f"{source}: not valid YAML: {exc}") from exc
    if not isinstance(raw, dict):
        raise ProfileError(f"{source}: the top level must be a mapping with a `models` key")
    try:
        profile = Profile.model_validate(raw)
    except ValidationError as exc:
        raise ProfileError(f"{source}: " + "; ".join(_describe(e) for e in exc.errors())) from None
    _check_shadow_prices(profile, source)
    _check_scorers(profile, source)
    return profile


# pydantic's discriminator tags in an error's key path: the providers' and the routes' strategies
_TAGS = frozenset(
    {"llama_cpp", "openai", "anthropic", "complexity", "cost", "latency", "domain", "cascade", "weighted"}
)


def _describe(error: Any) -> str:
    # Drop pydantic's discriminator tags (e.g. 'llama_cpp') from the key path.
    parts = [str(p) for p in error["loc"] if p not in _TAGS]
    where = ".".join(parts) or "(top level)"
    message = str(error["msg"]).removeprefix("Value error, ")
    if error["type"] == "extra_forbidden":
        message = "unknown key"
    return f"{where}: {message}"


def _check_shadow_prices(profile: Profile, source: str) -> None:
    for name, model in profile.models.items():
        if isinstance(model, LlamaCppModel) and isinstance(model.shadow_price, str):
            ref = model.shadow_price
            if ref not in profile.models and reference_price(ref) is None:
                raise ProfileError(
                    f"{source}: models.{name}.shadow_price: {ref!r} is neither a model of this profile "
                    "nor a known reference price; give {input, output} instead"
                )


def _check_scorers(profile: Profile, source: str) -> None:
    """A complexity route's own scorer file must be readable: a bad one keeps the old profile."""
    from daemon.core import complexity

    profile_path = Path(source) if source != "<profile>" else None
    for name, route in profile.routes.items():
        scorer = getattr(route, "scorer", None)
        if scorer is None:
            continue
        path = beside(profile_path, scorer)
        try:
            complexity.load(path)
        except (OSError, ValueError, KeyError, TypeError) as exc:
            raise ProfileError(f"{source}: routes.{name}.scorer: cannot read {path}: {exc}") from None
