"""The one error of the settings: every bad variable named in one message."""

from __future__ import annotations

from openvle_core.errors import OpenVLEError


class ConfigError(OpenVLEError):
    """The configuration is invalid; `problems` pairs each variable with the reason."""

    code = "config_invalid"

    def __init__(self, problems: list[tuple[str, str]]) -> None:
        lines = "\n".join(f"  {name}: {why}" for name, why in problems)
        super().__init__(f"invalid configuration ({len(problems)} problems):\n{lines}")
        self.problems = problems
