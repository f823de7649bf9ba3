"""The house's floors (docs/architecture.md): every import points down, and core/ stands on
no app and no Django. Read from the source, so a new module is held to it at once."""

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
FLOORS = {"core": 0, "base": 1, "gallery": 2, "recognition": 3, "videos": 4, "twicesite": 5}


def imported(path: Path) -> set[str]:
    """The top-level packages a module imports, anywhere in it (inside functions too)."""
    found = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            found |= {alias.name.split(".")[0] for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            found.add(node.module.split(".")[0])
    return found


def test_no_module_imports_a_floor_above_its_own():
    upward = []
    for package, floor in FLOORS.items():
        for path in sorted((ROOT / package).rglob("*.py")):
            above = {name for name in imported(path) if FLOORS.get(name, -1) > floor}
            if above:
                upward.append(f"{path.relative_to(ROOT)} imports {', '.join(sorted(above))}")
    assert upward == []


def test_the_core_imports_no_django():
    users = [
        str(path.relative_to(ROOT))
        for path in sorted((ROOT / "core").rglob("*.py"))
        if "django" in imported(path)
    ]
    assert users == []


def test_the_check_sees_an_import_that_runs_back_up(tmp_path):
    module = tmp_path / "m.py"
    module.write_text("def f():\n    from videos.models import Video\n")
    assert "videos" in imported(module)
