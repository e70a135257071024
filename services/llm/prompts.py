"""Prompts as code: one file per prompt under prompts/, validated at start.

A file is YAML front matter between `---` lines, then the template body (the
user message). Templates render in Jinja2's sandbox with StrictUndefined, and
may only use the variables their front matter declares. Any problem raises
PromptFileError naming the file and the line.
"""

from __future__ import annotations

import json
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import yaml
from jinja2 import StrictUndefined, Template, TemplateError, TemplateSyntaxError, meta
from jinja2.sandbox import SandboxedEnvironment
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from services.errors import BadUserInput, NotFound

DEFAULT_PROMPTS_DIR = Path(__file__).resolve().parents[2] / "prompts"
SUFFIX = ".md"
FENCE = "---"

VariableType = Literal["string", "integer", "number", "boolean", "array", "object"]
_PYTHON_TYPES: Mapping[str, tuple[type, ...]] = {
    "string": (str,),
    "integer": (int,),
    "number": (int, float),
    "boolean": (bool,),
    "array": (list,),
    "object": (dict,),
}


class PromptFileError(ValueError):
    """A prompt file that cannot be served; the message starts with `file:line:`."""


class Variable(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    type: VariableType = "string"
    required: bool = True
    description: str = ""
    max_length: int | None = Field(None, ge=1)  # strings and arrays
    default: Any = None


class Spec(BaseModel):
    """The front matter."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    version: str = Field(min_length=1, max_length=50)
    description: str = ""
    model: str = Field(min_length=1)
    fallback_models: tuple[str, ...] = ()
    temperature: float = Field(0.7, ge=0, le=2)
    max_tokens: int | None = Field(None, ge=1)
    cache_ttl_s: int = Field(0, ge=0)  # 0: no cache
    system: str | None = None  # a template too
    variables: dict[str, Variable] = Field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class Prompt:
    path: str  # e.g. "summarize", "support/triage"
    file: Path
    spec: Spec
    _body: Template
    _system: Template | None

    @property
    def version(self) -> str:
        return self.spec.version

    @property
    def models(self) -> tuple[str, ...]:
        return (self.spec.model, *self.spec.fallback_models)

    def validate(self, variables: Mapping[str, Any] | None) -> dict[str, Any]:
        """The variables with defaults applied, or BAD_USER_INPUT naming each bad one."""
        given = dict(variables or {})
        problems: dict[str, str] = {}
        for name in sorted(set(given) - set(self.spec.variables)):
            problems[name] = "is not a variable of this prompt"
        values: dict[str, Any] = {}
        for name, variable in self.spec.variables.items():
            if name not in given or given[name] is None:
                if variable.required:
                    problems[name] = "is required"
                else:
                    values[name] = variable.default
                continue
            value = given[name]
            kinds = _PYTHON_TYPES[variable.type]
            if not isinstance(value, kinds) or (
                isinstance(value, bool) and variable.type != "boolean"
            ):
                problems[name] = f"must be of type {variable.type}"
            elif (
                variable.max_length is not None
                and isinstance(value, str | list)
                and len(value) > variable.max_length
            ):
                problems[name] = f"must be at most {variable.max_length} long"
            else:
                values[name] = value
        if problems:
            listing = "; ".join(f"{name} {problem}" for name, problem in problems.items())
            raise BadUserInput(
                f"bad variables for prompt {self.path}: {listing}",
                variables=[{"name": name, "problem": p} for name, p in problems.items()],
            )
        return values

    def render(self, values: Mapping[str, Any]) -> list[dict[str, str]]:
        """The chat messages for validated values."""
        try:
            messages = []
            if self._system is not None:
                messages.append({"role": "system", "content": self._system.render(values)})
            messages.append({"role": "user", "content": self._body.render(values)})
        except TemplateError as error:
            # Jinja's messages name attributes and types, never the values.
            raise BadUserInput(f"prompt {self.path} could not be rendered: {error}") from None
        return messages

    def cache_key_material(self, messages: list[dict[str, str]], model: str) -> str:
        return json.dumps(
            [self.path, self.version, model, self.spec.temperature, self.spec.max_tokens, messages],
            sort_keys=True,
        )


def _environment() -> SandboxedEnvironment:
    return SandboxedEnvironment(
        undefined=StrictUndefined, autoescape=False, keep_trailing_newline=False
    )


def _line_of(text: str, needle: str, default: int) -> int:
    for number, line in enumerate(text.splitlines(), start=1):
        if needle in line:
            return number
    return default


def parse_prompt(text: str, file: Path, path: str) -> Prompt:
    lines = text.splitlines()
    if not lines or lines[0].strip() != FENCE:
        raise PromptFileError(f"{file}:1: a prompt starts with a '---' line of front matter")
    try:
        end = next(i for i in range(1, len(lines)) if lines[i].strip() == FENCE)
    except StopIteration:
        raise PromptFileError(f"{file}:1: the front matter has no closing '---' line") from None
    header = "\n".join(lines[1:end])
    body = "\n".join(lines[end + 1 :]).strip("\n")
    body_first_line = end + 2
    try:
        data = yaml.safe_load(header) or {}
    except yaml.YAMLError as error:
        mark = getattr(error, "problem_mark", None)
        line = mark.line + 2 if mark is not None else 2
        problem = getattr(error, "problem", None) or str(error).splitlines()[0]
        raise PromptFileError(f"{file}:{line}: front matter is not YAML: {problem}") from None
    if not isinstance(data, dict):
        raise PromptFileError(f"{file}:2: front matter must be a mapping")
    try:
        spec = Spec.model_validate(data)
    except ValidationError as error:
        first = error.errors()[0]
        where = ".".join(str(part) for part in first["loc"])
        key = str(first["loc"][-1]) if first["loc"] else ""
        line = _line_of(header, f"{key}:", 0) + 1 if key else 2
        raise PromptFileError(f"{file}:{line}: {where}: {first['msg']}") from None
    if not body.strip():
        raise PromptFileError(f"{file}:{body_first_line}: the template body is empty")
    env = _environment()
    templates: dict[str, Template] = {}
    for name, source, first_line in (
        ("body", body, body_first_line),
        ("system", spec.system, _line_of(header, "system:", 0) + 1),
    ):
        if source is None:
            continue
        try:
            parsed = env.parse(source)
        except TemplateSyntaxError as error:
            line = first_line + (error.lineno or 1) - 1
            raise PromptFileError(f"{file}:{line}: template error: {error.message}") from None
        unknown = sorted(meta.find_undeclared_variables(parsed) - set(spec.variables))
        if unknown:
            line = first_line + _line_of(source, unknown[0], 1) - 1
            raise PromptFileError(
                f"{file}:{line}: template uses undeclared variables: {', '.join(unknown)}"
            )
        templates[name] = env.from_string(source)
    return Prompt(path, file, spec, templates["body"], templates.get("system"))


def _signature(directory: Path) -> tuple[tuple[str, int], ...]:
    return tuple(
        sorted((str(file), file.stat().st_mtime_ns) for file in directory.rglob(f"*{SUFFIX}"))
    )


class PromptLibrary:
    """Every prompt of a directory, by path. `refresh()` reloads changed files (dev)."""

    def __init__(self, directory: Path | None = None) -> None:
        self.directory = (directory or DEFAULT_PROMPTS_DIR).resolve()
        self._prompts: dict[str, Prompt] = {}
        self._signature: tuple[tuple[str, int], ...] = ()
        self.load()

    def load(self) -> None:
        if not self.directory.is_dir():
            raise PromptFileError(f"{self.directory}:0: the prompts directory does not exist")
        signature = _signature(self.directory)
        prompts: dict[str, Prompt] = {}
        for file in sorted(self.directory.rglob(f"*{SUFFIX}")):
            path = file.relative_to(self.directory).with_suffix("").as_posix()
            try:
                text = file.read_text(encoding="utf-8")
            except (OSError, UnicodeDecodeError) as error:
                raise PromptFileError(f"{file}:0: cannot be read: {error}") from None
            prompts[path] = parse_prompt(text, file, path)
        self._prompts = prompts
        self._signature = signature

    def refresh(self) -> bool:
        """Reloads when a file changed; a broken edit keeps the last good set and raises."""
        if _signature(self.directory) == self._signature:
            return False
        self.load()
        return True

    def get(self, path: str) -> Prompt:
        prompt = self._prompts.get(path)
        if prompt is None:
            raise NotFound(f"no prompt {path!r}", path=path)
        return prompt

    def __iter__(self) -> Iterator[Prompt]:
        return iter(sorted(self._prompts.values(), key=lambda prompt: prompt.path))

    def __len__(self) -> int:
        return len(self._prompts)
