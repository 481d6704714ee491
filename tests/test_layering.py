"""ADR 0001: a block imports core and other blocks' public interfaces only, never their internals."""

from __future__ import annotations

import ast
from pathlib import Path

PACKAGE = Path(__file__).resolve().parents[1] / "cityos"
BLOCKS = {"data", "auth", "services", "assets", "ingest", "gateway", "portal", "security", "ops"}


def _is_public(module: str) -> bool:
    """``cityos.X`` or ``cityos.X.sub`` where ``sub`` is a package (its ``__init__``)."""
    parts = module.split(".")
    if len(parts) <= 2:
        return True
    return (PACKAGE.joinpath(*parts[1:]) / "__init__.py").exists()


def _imports(path: Path) -> list[str]:
    tree = ast.parse(path.read_text(encoding="utf-8"))
    found: list[str] = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found.extend(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            found.append(node.module)
    return [name for name in found if name.startswith("cityos.")]


def test_the_eight_function_groups_are_visible() -> None:
    for block in BLOCKS | {"core"}:
        assert (PACKAGE / block / "__init__.py").exists(), block
        assert (PACKAGE / block / "__init__.py").read_text().strip(), f"{block} needs a docstring"


def test_blocks_use_only_public_interfaces_of_other_blocks() -> None:
    offences: list[str] = []
    for path in PACKAGE.rglob("*.py"):
        relative = path.relative_to(PACKAGE)
        if len(relative.parts) == 1:
            continue  # app.py / __main__.py are the composition root: they wire blocks together
        own = relative.parts[0]
        for module in _imports(path):
            target = module.split(".")[1]
            if target in BLOCKS and target != own and not _is_public(module):
                offences.append(f"{relative}: imports {module}")
    assert not offences, "\n".join(offences)


def test_core_depends_on_no_block() -> None:
    for path in (PACKAGE / "core").rglob("*.py"):
        for module in _imports(path):
            assert module.split(".")[1] not in BLOCKS, f"{path.name} imports {module}"
