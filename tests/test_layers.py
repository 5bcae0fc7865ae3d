"""The folder tree is the architecture: every import points down a layer (or stays within one).

Layers, bottom to top: core < maths < nets < measure < plotting < experiments < cli. The package's
``__init__`` (the public API) sits on top. Imports inside functions count too (they hide
dependencies, so they are checked like the rest). Only ``plotting`` imports matplotlib.
"""

import ast
from pathlib import Path

import pytest

import spheres

LAYERS = ("core", "maths", "nets", "measure", "plotting", "experiments", "cli")
ROOT = Path(spheres.__file__).parent


def _layer(module: str) -> int:
    parts = module.split(".")
    if parts[0] != "spheres":
        raise ValueError(module)
    if len(parts) == 1:
        return len(LAYERS)  # the public API on top
    return LAYERS.index(parts[1])


def _modules():
    for path in sorted(ROOT.rglob("*.py")):
        rel = path.relative_to(ROOT.parent).with_suffix("")
        parts = list(rel.parts)
        if parts[-1] == "__init__":
            parts.pop()
        yield ".".join(parts), path


def _imports(path: Path):
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            for alias in node.names:
                yield node.lineno, alias.name
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            yield node.lineno, node.module
            for alias in node.names:  # ``from spheres.maths import theory`` imports spheres.maths.theory
                yield node.lineno, f"{node.module}.{alias.name}"


def test_every_subpackage_is_a_known_layer():
    found = {p.name for p in ROOT.iterdir() if p.is_dir() and (p / "__init__.py").is_file()}
    assert found == set(LAYERS)
    assert not [p.name for p in ROOT.glob("*.py") if p.name != "__init__.py"], "modules belong in a layer"


def test_imports_point_down():
    violations = []
    for module, path in _modules():
        own = _layer(module)
        for line, target in _imports(path):
            if not target.startswith("spheres.") or target.split(".")[1] not in LAYERS:
                continue
            if _layer(target) > own:
                violations.append(f"{path.relative_to(ROOT.parent)}:{line} ({LAYERS[min(own, len(LAYERS) - 1)]}) "
                                  f"imports {target} ({LAYERS[_layer(target)]})")
    assert not violations, "imports from a higher layer:\n" + "\n".join(violations)


def test_only_plotting_imports_matplotlib():
    offenders = [f"{path}:{line}" for module, path in _modules() if ".plotting" not in module
                 for line, target in _imports(path) if target.split(".")[0] == "matplotlib"]
    assert not offenders, offenders


@pytest.mark.parametrize("bad", ["spheres.cli.main", "spheres.experiments.reproduce"])
def test_the_check_catches_an_upward_import(tmp_path, bad):
    """The check can fail: a maths module importing from a higher layer is reported."""
    fake = tmp_path / "m.py"
    fake.write_text(f"import numpy\nfrom {bad.rsplit('.', 1)[0]} import {bad.rsplit('.', 1)[1]}\n")
    targets = [t for _, t in _imports(fake) if t.startswith("spheres.")]
    assert any(_layer(t) > _layer("spheres.maths.theory") for t in targets)
