"""The command-line reference: every command and option of the `openvle` typer app.

The app is read through `typer.main.get_command`, the same object `--help` prints from,
so the page lists exactly what the command accepts. Only the click-style interface
(`commands`, `params`, `opts`) is used: typer may bring its own copy of click.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from mdtable import cell, code, table


def root_command() -> Any:
    """The `openvle` command as typer builds it for `--help` (a click-style command)."""
    import typer.main

    from openvle_cli.main import app

    return typer.main.get_command(app)


def context(command: Any) -> Any:
    """A context for `command`, of whatever click flavour built it."""
    return command.context_class(command, info_name=command.name)


def walk(command: Any, path: tuple[str, ...]) -> Iterator[tuple[tuple[str, ...], Any]]:
    """Every leaf command under `command`, with its full name, in registration order."""
    if hasattr(command, "list_commands"):  # a group
        ctx = context(command)
        for name in command.list_commands(ctx):
            sub = command.get_command(ctx, name)
            if sub is not None and not sub.hidden:
                yield from walk(sub, (*path, name))
    else:
        yield path, command


def is_option(param: Any) -> bool:
    """Options are named `--x`; arguments are positional."""
    return bool(param.param_type_name == "option")


def usage(path: tuple[str, ...], command: Any) -> str:
    """`openvle token create [OPTIONS] NAME`."""
    pieces = [*path]
    if any(is_option(p) for p in command.params):
        pieces.append("[OPTIONS]")
    for param in command.params:
        if not is_option(param):
            name = (param.name or "").upper()
            pieces.append(name if param.required else f"[{name}]")
    return " ".join(pieces)


def type_label(param: Any, command: Any) -> str:
    """`<int>`, `<read|operate|admin>`: what the option takes, as `--help` shows it."""
    display = getattr(param, "display_type", None)
    if callable(display):
        return str(display(context(command)))
    kind = getattr(param, "type", None)
    choices = getattr(kind, "choices", None)
    if choices:
        return "<" + "|".join(str(getattr(c, "value", c)) for c in choices) + ">"
    return f"<{getattr(kind, 'name', 'value')}>"


def option_names(param: Any, command: Any) -> str:
    """`--proxy-headers / --no-proxy-headers`, `--port <int>`."""
    names = " / ".join([", ".join(param.opts), *param.secondary_opts])
    if getattr(param, "is_flag", False):
        return str(names)
    return f"{names} {type_label(param, command)}"


def default_text(param: Any) -> str:
    """The default, or nothing when there is none."""
    default = param.default
    if default is None or callable(default) or param.required:
        return ""
    if isinstance(default, bool):
        return "yes" if default else "no"
    return code(getattr(default, "value", default))


def params_table(command: Any) -> str:
    """Arguments and options of one command."""
    rows = []
    for param in command.params:
        help_text = getattr(param, "help", None) or ""
        if not is_option(param):
            rows.append((code((param.name or "").upper()), "", "", cell(help_text)))
        elif not param.hidden:
            env = param.envvar if isinstance(param.envvar, str) else ""
            names = code(option_names(param, command))
            rows.append((names, default_text(param), code(env), cell(help_text)))
    if not rows:
        return "No options."
    return table(["argument or option", "default", "environment", "meaning"], rows)


def render_cli() -> str:
    """A section per command: usage, its help text, its options."""
    parts = []
    for path, command in walk(root_command(), ("openvle",)):
        parts.append(f"### `{' '.join(path)}`\n")
        parts.append(f"```text\n{usage(path, command)}\n```\n")
        parts.append((command.help or "").strip() + "\n")
        parts.append(params_table(command) + "\n")
    return "\n".join(parts)


def command_names() -> list[str]:
    """Every command's full name (for checks)."""
    return [" ".join(path) for path, _ in walk(root_command(), ("openvle",))]
