"""The command-line reference, from the typer app: every command, argument and option."""

from __future__ import annotations

import typer
import typer.main
from typer.core import TyperArgument, TyperGroup, TyperOption

from haunted.reference.markdown import code, dedent_docstring, front_matter, table


def _commands(group: TyperGroup, prefix: str) -> list[tuple[str, typer.core.TyperCommand]]:
    found: list[tuple[str, typer.core.TyperCommand]] = []
    context = typer.Context(group, info_name=prefix)
    for name in group.list_commands(context):
        command = group.get_command(context, name)
        assert command is not None
        path = f"{prefix} {name}"
        if isinstance(command, TyperGroup):
            found += _commands(command, path)
        elif isinstance(command, typer.core.TyperCommand):
            found.append((path, command))
    return found


def commands() -> list[tuple[str, typer.core.TyperCommand]]:
    """(`haunted ...`, command) for every leaf command, in the app's order."""
    from haunted.cli import app

    root = typer.main.get_command(app)
    assert isinstance(root, TyperGroup)
    return _commands(root, "haunted")


def _usage(path: str, command: typer.core.TyperCommand) -> str:
    pieces = (
        [path, "[OPTIONS]"] if any(isinstance(p, TyperOption) for p in command.params) else [path]
    )
    for param in command.params:
        if isinstance(param, TyperArgument):
            name = (param.name or "").upper()
            name = name if param.required else f"[{name}]"
            pieces.append(name + ("..." if param.nargs == -1 else ""))
    return " ".join(pieces)


def _parameters(command: typer.core.TyperCommand) -> str:
    rows = []
    for param in command.params:
        if isinstance(param, TyperOption) and param.name == "help":
            continue
        if isinstance(param, TyperArgument):
            name = code((param.name or "").upper())
            kind = "argument" + (", repeatable" if param.nargs == -1 else "")
            help_text = getattr(param, "help", None) or ""
        else:
            assert isinstance(param, TyperOption)
            name = ", ".join(code(opt) for opt in param.opts)
            kind = (
                "flag" if param.is_flag else "option" + (", repeatable" if param.multiple else "")
            )
            kind += ", required" if param.required else ""
            help_text = param.help or ""
        default = param.default
        shown = "" if default in (None, False, ()) or param.name == "help" else code(str(default))
        rows.append((name, kind, shown, help_text))
    if not rows:
        return ""
    return table(("parameter", "kind", "default", "meaning"), rows)


def page() -> str:
    from haunted.cli import app

    out = [front_matter("Command line", 2, description="Every haunted command.")]
    out.append(dedent_docstring(app.info.help) + "\n")
    if app.info.epilog:
        out.append(dedent_docstring(app.info.epilog) + "\n")
    for path, command in commands():
        out.append(f"## {path}\n")
        out.append("```\n" + _usage(path, command) + "\n```\n")
        out.append(dedent_docstring(command.help) + "\n")
        parameters = _parameters(command)
        if parameters:
            out.append(parameters)
    return "\n".join(out)
