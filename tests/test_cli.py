"""The ``cityos`` command's help and settings table, as an operator reads them in a terminal."""

from __future__ import annotations

from typer.testing import CliRunner

from cityos.core.settings import Settings
from cityos.ops.cli import app


def test_settings_table_shows_every_variable_whole_in_a_narrow_terminal() -> None:
    result = CliRunner().invoke(app, ["settings"], env={"COLUMNS": "80"})
    assert result.exit_code == 0, result.output
    for env, _default, _doc in Settings.describe():
        assert env in result.output, f"{env} is cut or missing"


def test_help_names_the_commands() -> None:
    result = CliRunner().invoke(app, ["--help"], env={"COLUMNS": "100"})
    assert result.exit_code == 0
    for command in ("serve", "settings", "version"):
        assert command in result.output
