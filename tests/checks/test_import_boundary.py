"""What the student side loads, in a fresh interpreter each: importing the checks (and
registering every exercise) loads neither nbgrader, torch nor Dask; a ``check`` loads
torch for its references (lazily), but nothing of the grader; and the harness, which the
grader's sandbox loads as a top-level module, needs the standard library and numpy only."""

from __future__ import annotations

import ast
import json
import shutil
import subprocess
import sys
from pathlib import Path

import backprop_course.checks.harness as harness

FORBIDDEN = {"nbgrader", "torch", "dask", "distributed", "jupyter_client", "nbconvert"}
GRADER_ONLY = FORBIDDEN - {"torch"}
# what a numpy extension module registers, besides numpy itself
NUMPY_SIDE = {"numpy", "cython_runtime"}

LOADED = """
import json, sys
before = set(sys.modules)
{code}
new = sorted({{m.split(".")[0] for m in set(sys.modules) - before}})
print(json.dumps(new))
"""


def loaded_by(code: str, cwd: Path | None = None, env: dict | None = None) -> set[str]:
    """The top-level modules a fresh interpreter loads running ``code``."""
    done = subprocess.run([sys.executable, "-c", LOADED.format(code=code)], cwd=cwd, env=env,
                          capture_output=True, text=True, timeout=120, check=False)
    assert done.returncode == 0, done.stderr
    return set(json.loads(done.stdout.strip().splitlines()[-1]))


def not_stdlib(modules: set[str]) -> set[str]:
    return {m for m in modules if m not in sys.stdlib_module_names and not m.startswith("_")}


def test_importing_the_student_side_loads_nothing_of_the_grader() -> None:
    new = loaded_by("import backprop_course.checks\nimport backprop_course.checks.exercises\n"
                    "from backprop_course.checks import REGISTRY\nassert len(REGISTRY) >= 16")
    assert "backprop_course" in new
    assert not new & FORBIDDEN, new & FORBIDDEN
    assert not_stdlib(new) <= {"backprop_course"} | NUMPY_SIDE, not_stdlib(new)


def test_the_probe_sees_what_is_loaded(tmp_path) -> None:
    """The counterpart: the same probe reports a forbidden module that does load (here
    stand-ins, which load in no time), submodules by their package."""
    (tmp_path / "nbgrader").mkdir()
    (tmp_path / "nbgrader" / "__init__.py").write_text("")
    (tmp_path / "nbgrader" / "apps.py").write_text("")
    (tmp_path / "dask.py").write_text("import json\n")
    new = loaded_by("sys.path.insert(0, '.')\nimport nbgrader.apps\nimport dask", cwd=tmp_path)
    assert {"nbgrader", "dask"} <= new & FORBIDDEN


def test_a_check_loads_torch_for_its_references_and_nothing_of_the_grader(tmp_path) -> None:
    code = ("import numpy as np\nimport backprop_course as bc\n"
            "import backprop_course.checks as c\n"
            "c.check('relu_backward', lambda x, g: g * (x > 0), part='random')\n"
            "class Tanh(bc.Function):\n"
            "    forward = staticmethod(lambda ctx, x: ctx.save_for_backward(np.tanh(x))"
            " or np.tanh(x))\n"
            "    backward = staticmethod(lambda ctx, g: g * (1 - ctx.saved_tensors[0] ** 2))\n"
            "c.check('tanh_function', Tanh, part='edge')\n")
    new = loaded_by(code, cwd=tmp_path)
    assert not new & GRADER_ONLY, new & GRADER_ONLY
    assert "torch" in new  # the references: torch's autograd, imported inside judge


def test_the_harness_needs_the_standard_library_and_numpy_only(tmp_path) -> None:
    """Loaded the way the sandbox loads it: the file alone, as the top-level ``harness``."""
    shutil.copy(harness.__file__, tmp_path / "harness.py")
    code = ("sys.path.insert(0, '.')\nimport harness\n"
            "assert harness.decode(harness.encode([1.5])).tolist() == [1.5]")
    new = loaded_by(code, cwd=tmp_path)
    assert "harness" in new
    assert not_stdlib(new) <= {"harness"} | NUMPY_SIDE, not_stdlib(new)


def test_the_harness_source_has_no_relative_or_foreign_imports() -> None:
    tree = ast.parse(Path(harness.__file__).read_text(encoding="utf-8"))
    imported = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom):
            assert node.level == 0, f"relative import on line {node.lineno}"
            imported.add(node.module.split(".")[0])
        elif isinstance(node, ast.Import):
            imported.update(alias.name.split(".")[0] for alias in node.names)
    assert "numpy" in imported
    assert not_stdlib(imported) <= {"numpy"}, not_stdlib(imported)
