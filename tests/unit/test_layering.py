"""The import arrows between the top-level packages: cli -> bench -> launcher, never back.

A cycle here once hid behind lazy imports (bench imported the launcher from services.cli, which imports
bench for `costmesh bench`); this reads every module's imports, lazy ones included.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
FORBIDDEN = {
    "launcher": ("services.cli", "bench", "training"),
    "bench": ("services.cli",),
    "services": ("bench", "training", "launcher"),  # services never start stacks or run benches
}


def imports(path: Path) -> set[str]:
    found = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            found |= {alias.name for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module and not node.level:
            found.add(node.module)
    return found


@pytest.mark.parametrize("package", sorted(FORBIDDEN))
def test_no_import_points_back(package: str) -> None:
    wrong = []
    for path in sorted((ROOT / package).rglob("*.py")):
        if package == "services" and path.is_relative_to(ROOT / "services" / "cli"):
            continue  # the CLI is the top: it may import everything
        for name in imports(path):
            if any(name == bad or name.startswith(f"{bad}.") for bad in FORBIDDEN[package]):
                wrong.append(f"{path.relative_to(ROOT)} imports {name}")
    assert not wrong, "\n".join(wrong)
