"""The layer contract of the package (docs/DESIGN.md, "Layers"): imports point one way, and the
offline parts (evaluation, drawing, config, ...) never import TensorFlow.

Every ``import`` in every module is checked, including those inside functions."""

import ast
import pathlib

import pytest

PACKAGE = pathlib.Path(__file__).resolve().parents[1] / "maskrcnn_body"

LAYERS = {
    # 0: no project imports beyond this row
    "constants": 0,
    "errors": 0,
    "version": 0,
    "utils": 0,
    "config": 1,
    "data": 2,
    "ops": 3,
    "convert": 3,
    "evaluation": 4,
    "drawing": 4,
    "model": 5,
    "training": 6,
    "inference": 6,
    "workflows": 7,
    "serving": 8,
    "cli": 9,
}
"""Layer of each top-level module / subpackage: a module may import its own subpackage and any
lower layer, never its own layer's other subpackages or a higher layer."""

NO_TENSORFLOW = ("constants", "errors", "version", "utils", "config", "evaluation", "drawing", "ops/paste.py")
"""Modules that never use TensorFlow (``maskrcnn-body metric`` / ``draw`` run without it)."""
NO_TENSORFLOW_AT_IMPORT = (
    "data/schema.py",
    "data/writer.py",
    "data/conversion.py",
    "data/synthetic.py",
    "convert",
    "workflows",
)
"""Modules that import TensorFlow only inside the functions that read or write TFRecords."""

TF_MODULES = ("tensorflow", "keras", "tf_keras")


def _modules():
    return sorted(p for p in PACKAGE.rglob("*.py") if "__pycache__" not in p.parts)


def _unit(path: pathlib.Path) -> str:
    rel = path.relative_to(PACKAGE)
    return rel.parts[0].removesuffix(".py")


def _imports(path: pathlib.Path, top_level_only: bool = False):
    """(line, imported module name) for every import in ``path``."""
    tree = ast.parse(path.read_text(), str(path))
    nodes = tree.body if top_level_only else ast.walk(tree)
    for node in nodes:
        if isinstance(node, ast.Import):
            for alias in node.names:
                yield node.lineno, alias.name
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            yield node.lineno, node.module
            if node.module == "maskrcnn_body":
                for alias in node.names:
                    yield node.lineno, f"maskrcnn_body.{alias.name}"


def test_every_unit_has_a_layer():
    units = {_unit(p) for p in _modules()} - {"__init__"}
    assert units <= set(LAYERS), sorted(units - set(LAYERS))


@pytest.mark.parametrize("path", _modules(), ids=lambda p: str(p.relative_to(PACKAGE)))
def test_imports_point_down(path):
    unit = _unit(path)
    if unit == "__init__":
        return
    bad = []
    for line, name in _imports(path):
        if name.startswith(("tests", "bench")):
            bad.append(f"line {line}: {name} (test/benchmark code)")
        if not name.startswith("maskrcnn_body."):
            continue
        target = name.split(".")[1]
        if target == unit or target not in LAYERS:
            continue
        if LAYERS[target] >= LAYERS[unit]:
            bad.append(f"line {line}: {unit} (layer {LAYERS[unit]}) imports {name} (layer {LAYERS[target]})")
    assert not bad, "\n".join(bad)


@pytest.mark.parametrize(
    "path",
    [p for p in _modules() if any(str(p.relative_to(PACKAGE)).startswith(n) for n in NO_TENSORFLOW)],
    ids=lambda p: str(p.relative_to(PACKAGE)),
)
def test_offline_modules_do_not_import_tensorflow(path):
    found = [f"line {line}: {name}" for line, name in _imports(path) if name.split(".")[0] in TF_MODULES]
    assert not found, found


@pytest.mark.parametrize(
    "path",
    [p for p in _modules() if any(str(p.relative_to(PACKAGE)).startswith(n) for n in NO_TENSORFLOW_AT_IMPORT)],
    ids=lambda p: str(p.relative_to(PACKAGE)),
)
def test_record_modules_import_tensorflow_lazily(path):
    found = [
        f"line {line}: {name}" for line, name in _imports(path, top_level_only=True) if name.split(".")[0] in TF_MODULES
    ]
    assert not found, found


@pytest.mark.parametrize("path", sorted((PACKAGE / "cli").glob("*.py")), ids=lambda p: p.name)
def test_command_line_imports_tensorflow_only_when_a_command_runs(path):
    """``maskrcnn-body --help`` and the TF-free commands (metric, draw) start instantly."""
    found = [
        f"line {line}: {name}"
        for line, name in _imports(path, top_level_only=True)
        if name.split(".")[0] in TF_MODULES
        or name.startswith(
            ("maskrcnn_body.model", "maskrcnn_body.training", "maskrcnn_body.inference", "maskrcnn_body.ops")
        )
    ]
    assert not found, found


def _design_table_paths(design: str):
    """The module paths named in docs/DESIGN.md's "Modules" table (first column, each in backquotes)."""
    import re

    section = design.split("## Modules", 1)[1].split("\n## ", 1)[0]
    paths = set()
    for line in section.splitlines():
        if line.startswith("| `"):
            first = line.split("|")[1]
            paths.update(re.findall(r"`([^`]+)`", first))
    return paths


def test_design_names_every_module():
    """docs/DESIGN.md's "Modules" table names every module by its path (no wildcards: a new module needs its own
    line there), and names no module that does not exist."""
    design = (PACKAGE.parent / "docs" / "DESIGN.md").read_text()
    named = _design_table_paths(design)
    modules = {str(p.relative_to(PACKAGE)) for p in _modules() if p.name != "__init__.py"}
    assert not any("*" in n or "<" in n for n in named), sorted(n for n in named if "*" in n or "<" in n)
    assert not modules - named, f"docs/DESIGN.md, 'Modules', lacks {sorted(modules - named)}"
    py_named = {n for n in named if n.endswith(".py")}
    assert not py_named - modules, f"docs/DESIGN.md, 'Modules', names missing modules {sorted(py_named - modules)}"
