"""Prompt files: loading, validation at start (file and line), variables, rendering."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from services.errors import BadUserInput, NotFound
from services.llm.prompts import DEFAULT_PROMPTS_DIR, PromptFileError, PromptLibrary
from tests.services.llm.conftest import HELLO


def test_shipped_prompts_load_and_render() -> None:
    library = PromptLibrary(DEFAULT_PROMPTS_DIR)
    assert {"summarize", "classify", "support/reply"} <= {prompt.path for prompt in library}
    classify = library.get("classify")
    messages = classify.render(classify.validate({"text": "refund please", "labels": ["billing"]}))
    assert messages[0]["role"] == "system"
    assert "- billing" in messages[1]["content"] and "refund please" in messages[1]["content"]


def test_defaults_apply_and_each_bad_variable_is_named(prompts_dir: Path) -> None:
    hello = PromptLibrary(prompts_dir).get("hello")
    assert hello.validate({"name": "Ada"}) == {"name": "Ada", "times": 1}
    with pytest.raises(BadUserInput) as raised:
        hello.validate({"times": "two", "colour": "red"})
    problems = {item["name"]: item["problem"] for item in raised.value.extensions["variables"]}
    assert problems == {
        "name": "is required",
        "times": "must be of type integer",
        "colour": "is not a variable of this prompt",
    }
    with pytest.raises(BadUserInput, match="name must be at most 40"):
        hello.validate({"name": "x" * 41})
    with pytest.raises(BadUserInput, match="times must be of type integer"):
        hello.validate({"name": "Ada", "times": True})


def test_unknown_prompt_is_not_found(prompts_dir: Path) -> None:
    with pytest.raises(NotFound):
        PromptLibrary(prompts_dir).get("nope")


def test_the_sandbox_refuses_unsafe_attributes(tmp_path: Path) -> None:
    (tmp_path / "evil.md").write_text(
        HELLO.replace("Say hello to {{ name }}", "{{ name.__class__.__mro__ }}")
    )
    evil = PromptLibrary(tmp_path).get("evil")
    with pytest.raises(BadUserInput, match="could not be rendered"):
        evil.render(evil.validate({"name": "Ada"}))


@pytest.mark.parametrize(
    ("text", "line", "message"),
    [
        ("no front matter\n", 1, "starts with a '---'"),
        ("---\nversion: 1\n", 1, "no closing"),
        ("---\nversion: '1'\nmodel: [unclosed\n---\nbody\n", 3, "not YAML"),
        ("---\nversion: '1'\nmodel: m\ntemperature: 9\n---\nbody\n", 4, "temperature"),
        ("---\nversion: '1'\nmodel: m\n---\nline one\n{% if %}\n", 6, "template error"),
        (
            "---\nversion: '1'\nmodel: m\nvariables:\n  a: {type: string}\n---\n{{ a }}\n{{ b }}\n",
            8,
            "undeclared variables: b",
        ),
        ("---\nversion: '1'\nmodel: m\n---\n\n", 5, "body is empty"),
    ],
)
def test_a_broken_prompt_fails_start_with_file_and_line(
    tmp_path: Path, text: str, line: int, message: str
) -> None:
    (tmp_path / "good.md").write_text(HELLO)
    (tmp_path / "broken.md").write_text(text)
    with pytest.raises(PromptFileError, match=message) as raised:
        PromptLibrary(tmp_path)
    assert str(raised.value).startswith(f"{tmp_path / 'broken.md'}:{line}:")


def test_refresh_reloads_changed_files_and_keeps_the_last_good_set(prompts_dir: Path) -> None:
    library = PromptLibrary(prompts_dir)
    assert library.refresh() is False
    file = prompts_dir / "hello.md"
    file.write_text(HELLO.replace('version: "2.1"', 'version: "2.2"'))
    os.utime(file, ns=(1, 1))  # a distinct mtime even within one clock tick
    assert library.refresh() is True
    assert library.get("hello").version == "2.2"
    (prompts_dir / "bad.md").write_text("oops\n")
    with pytest.raises(PromptFileError):
        library.refresh()
    assert library.get("hello").version == "2.2"
