"""The layout shows the architecture, and the host process is left alone.

Roles, from the bottom up: the writing contract (``verify/*.py`` but the interfaces), shared
models (``verify/models``), records (``verify/records``), then the engine (``verify/engine``) and
rendering (``verify/render``) side by side, and the interfaces on top (cli, registry, index,
pytest_plugin, testing, notebook). A module imports only from its own role and the roles below;
rendering never imports the engine, records never import the registry. Imports under
``if TYPE_CHECKING:`` are annotations, not dependencies, and are not counted.
"""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
INTERFACES = {"cli", "registry", "index", "hunt", "pytest_plugin", "testing", "notebook", "__main__"}
LEVEL = {"contract": 0, "models": 1, "records": 2, "engine": 3, "render": 3, "interfaces": 4}


def role(module: str) -> str | None:
    parts = module.split(".")
    if parts[0] != "verify":
        return None
    if len(parts) == 1:
        return "contract"
    if parts[1] in ("models", "records", "engine", "render"):
        return parts[1]
    return "interfaces" if parts[1] in INTERFACES else "contract"


def runtime_imports(path: Path) -> set[str]:
    """Modules imported by ``path``, leaving out ``if TYPE_CHECKING:`` blocks."""
    tree = ast.parse(path.read_text())
    skip: set[int] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test):
            skip |= {id(n) for n in ast.walk(node)}
    out: set[str] = set()
    for node in ast.walk(tree):
        if id(node) in skip:
            continue
        if isinstance(node, ast.Import):
            out |= {a.name for a in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            out.add(node.module)
            out |= {f"{node.module}.{a.name}" for a in node.names}
    return out


MODULES = sorted((ROOT / "verify").rglob("*.py"))


def module_name(path: Path) -> str:
    rel = path.relative_to(ROOT).with_suffix("")
    parts = list(rel.parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


@pytest.mark.parametrize("path", MODULES, ids=lambda p: str(p.relative_to(ROOT)))
def test_no_module_imports_from_a_role_above_its_own(path):
    me = module_name(path)
    mine = role(me)
    bad = []
    for imported in runtime_imports(path):
        theirs = role(imported)
        if theirs is None or theirs == mine or imported == "verify":
            continue
        if LEVEL[theirs] > LEVEL[mine] or (LEVEL[theirs] == LEVEL[mine] and theirs != mine):
            bad.append(f"{imported} ({theirs})")
    assert not bad, f"{me} ({mine}) imports from a role above its own: {', '.join(sorted(bad))}"


def test_theorem_modules_use_only_the_writing_api():
    """A theorem module imports dlverify's public writing API (``verify``) and shared models, never
    the engine, records, rendering or the interfaces, and never jax or mpmath directly."""
    for path in sorted((ROOT / "theorems").rglob("*.py")):
        for imported in runtime_imports(path):
            r = role(imported)
            assert r in (None, "contract", "models"), f"{path.name} imports {imported}"
            assert imported.split(".")[0] not in ("jax", "jaxlib", "mpmath"), f"{path.name} imports {imported}"
        assert "xp.name" not in path.read_text(), f"{path.name} branches on the backend"


def _fresh(code: str) -> str:
    return subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True,
                          cwd=ROOT).stdout.strip()


def test_importing_the_plugin_leaves_jax_in_float32():
    assert _fresh("import verify.pytest_plugin, jax; print(jax.config.jax_enable_x64)") == "False"
    assert _fresh("import verify, theorems.patel2016.layer, jax; print(jax.config.jax_enable_x64)") == "False"


def test_the_cli_and_the_plugin_import_neither_jax_nor_sympy():
    out = _fresh("import sys, verify, verify.cli, verify.pytest_plugin; "
                 "print(sorted(m for m in ('jax', 'sympy', 'hypothesis') if m in sys.modules))")
    assert out == "[]"


def test_a_plain_jax_test_runs_in_float32_beside_dlverify(pytester):
    pytester.makepyfile(test_plain="""
        import jax.numpy as jnp

        def test_default_dtype():
            assert jnp.ones(1).dtype == jnp.float32
    """)
    result = pytester.runpytest_subprocess("-q")  # the plugin loads through its entry point
    result.assert_outcomes(passed=1)


def test_float64_is_scoped_and_reentrant():
    import jax
    import jax.numpy as jnp

    from verify.config import active, float64

    outer = jax.config.jax_enable_x64  # this suite runs inside float64 (tests/conftest.py)
    with float64():
        with float64():
            assert jnp.ones(1).dtype == jnp.float64 and active()
        assert jax.config.jax_default_matmul_precision == "highest"
    assert jax.config.jax_enable_x64 == outer
