"""Rendering a prompt's messages with Jinja2's sandbox: a template can never run code, read files or
reach Python internals (`{{ ''.__class__.__mro__ }}` fails), and a variable it names but the call
does not give is an error, as is one the call gives that it never names.

A version's templates are compiled once (the registry keeps them), so a call only renders; a call
whose variables were rendered recently takes the rendered messages from a small cache.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from jinja2 import StrictUndefined, TemplateSyntaxError, UndefinedError, meta, nodes
from jinja2.exceptions import SecurityError
from jinja2.sandbox import ImmutableSandboxedEnvironment

from daemon.prompts.spec import PromptSpec, SpecError

# Immutable: a template cannot change a list or dict it was given either.
_ENV = ImmutableSandboxedEnvironment(undefined=StrictUndefined, autoescape=False, keep_trailing_newline=True)


class RenderError(ValueError):
    """The call's variables do not fit the template, or the template broke the sandbox's rules."""


CACHED = 256  # rendered results kept per version, for calls that repeat their variables
_PLAIN = (str, int, float, bool, type(None))


@dataclass(frozen=True, slots=True)
class Compiled:
    messages: tuple[tuple[str, Any], ...]  # (role, jinja Template)
    variables: frozenset[str]  # every variable the templates name
    optional: frozenset[str] = frozenset()  # those read through `default` or tested `is defined`
    rendered: dict[tuple[Any, ...], list[dict[str, str]]] = field(default_factory=dict, compare=False)

    def render(self, variables: Mapping[str, Any]) -> list[dict[str, str]]:
        """The messages for `variables`; the same plain variables again cost a dict lookup."""
        key = tuple(sorted(variables.items())) if all(type(v) in _PLAIN for v in variables.values()) else None
        found = self.rendered.get(key) if key is not None else None
        if found is None:
            found = self._render(variables)
            if key is not None:
                if len(self.rendered) >= CACHED:
                    self.rendered.clear()
                self.rendered[key] = found
        return [dict(message) for message in found]  # the caller's to change

    def _render(self, variables: Mapping[str, Any]) -> list[dict[str, str]]:
        given = set(variables)
        missing, extra = self.variables - self.optional - given, given - self.variables
        if missing:
            raise RenderError(f"missing variable(s): {', '.join(sorted(missing))}")
        if extra:
            known = ", ".join(sorted(self.variables)) or "none"
            raise RenderError(f"unknown variable(s): {', '.join(sorted(extra))} (the template uses {known})")
        try:
            return [{"role": role, "content": template.render(variables)} for role, template in self.messages]
        except SecurityError:
            raise RenderError("the template tried to reach something the sandbox forbids") from None
        except UndefinedError as exc:  # an attribute or key the given value lacks
            raise RenderError(f"the template reads what a variable does not have: {exc.message}") from None
        except Exception as exc:  # a filter given a value it cannot take, a division by zero...
            raise RenderError(f"rendering failed: {type(exc).__name__}") from None


def compile_spec(spec: PromptSpec) -> Compiled:
    """SpecError if a template is not valid Jinja."""
    templates, names, optional = [], set(), set()
    for index, (role, text) in enumerate(spec.messages):
        try:
            tree = _ENV.parse(text)
            names |= meta.find_undeclared_variables(tree)
            optional |= _optional(tree)
            templates.append((role, _ENV.from_string(text)))
        except TemplateSyntaxError as exc:
            raise SpecError(
                f"{spec.name}: messages[{index}]: template error on line {exc.lineno}: {exc.message}"
            ) from None
    return Compiled(tuple(templates), frozenset(names), frozenset(optional & names))


def _optional(tree: nodes.Template) -> set[str]:
    """Variables the template itself copes without: `{{ x | default(...) }}`, `{% if x is defined %}`."""
    found = {
        f.node.name
        for f in tree.find_all(nodes.Filter)
        if f.name in ("default", "d") and isinstance(f.node, nodes.Name)
    }
    found |= {
        t.node.name
        for t in tree.find_all(nodes.Test)
        if t.name in ("defined", "undefined") and isinstance(t.node, nodes.Name)
    }
    return found
