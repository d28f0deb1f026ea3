"""pytest plugin (registered as ``dlverify`` through the ``pytest11`` entry point).

Adds ``--dlverify-seed``, ``--dlverify-examples``, ``--dlverify-batch`` and ``--dlverify-out``
(counterexample files are kept in ``ROOTDIR/.dlverify/counterexamples`` by default, not in
pytest's temporary directories, which pytest deletes) and a ``dlverify`` fixture whose
``check(theorem)`` runs a theorem's faces with those settings and fails the test with the shrunk
counterexample and its replay command::

    def test_my_theorem(dlverify):
        dlverify.check(my_theorem)            # a verify.Theorem or a catalogue id

A ``verify.Theorem`` defined at the top level of a test module is also collected as a test of
its own (symbolic, numeric and mutant faces), named ``<variable>[<theorem id>]``.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import pytest


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("dlverify")
    group.addoption("--dlverify-seed", type=int, default=None,
                    help="master seed for dlverify searches (default: --hypothesis-seed if given, else 0)")
    group.addoption("--dlverify-examples", type=_positive, default=None,
                    help="batches per dlverify search (default: sized to each theorem's small scope)")
    group.addoption("--dlverify-batch", type=_positive, default=None,
                    help="instances per batch (default 512)")
    group.addoption("--dlverify-out", default=None, metavar="DIR",
                    help="where counterexample files are kept (default ROOTDIR/.dlverify/counterexamples)")


def _positive(text: str) -> int:
    """A positive whole number, or a one-line usage error (never a traceback)."""
    import argparse

    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a positive whole number, got {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"expected a positive whole number, got {value}")
    return value


class TheoremItem(pytest.Item):
    """A theorem declared in a test module, run as one test."""

    def __init__(self, *, theorem, **kwargs) -> None:
        super().__init__(**kwargs)
        self.theorem = theorem

    def runtest(self) -> None:
        settings = _settings(self.config)
        settings.check(self.theorem)

    def repr_failure(self, excinfo, style=None):  # noqa: ANN001 - pytest hook signature
        if isinstance(excinfo.value, AssertionError):
            return str(excinfo.value)
        return super().repr_failure(excinfo, style=style)

    def reportinfo(self):
        return self.path, None, f"theorem {self.theorem.id}"


def _is_theorem(obj) -> bool:  # noqa: ANN001
    """Without importing dlverify: pytest asks this of every object of every test module."""
    cls = type(obj)
    return cls.__name__ == "Theorem" and cls.__module__ == "verify.spec"


def pytest_pycollect_makeitem(collector, name, obj):  # noqa: ANN001 - pytest hook signature
    # only the theorems a module defines: one it imports is a test of the module that defines it
    if _is_theorem(obj) and isinstance(collector, pytest.Module) and obj.defined_in in ("", collector.obj.__name__):
        return TheoremItem.from_parent(collector, name=f"{name}[{obj.id}]", theorem=_located(obj))
    return None


def _located(theorem):  # noqa: ANN001, ANN202
    """The theorem, marked with the file that defines it (its path and SHA-256) when that is a
    test module or another file outside the catalogue, so that the counterexamples it leaves
    replay from anywhere (``verify replay FILE`` finds the file and checks its hash)."""
    import hashlib
    import sys

    if theorem.module or not theorem.defined_in:
        return theorem
    module = sys.modules.get(theorem.defined_in)
    path = getattr(module, "__file__", None)
    if not path or theorem.defined_in.startswith("theorems."):
        return theorem
    path = Path(path).resolve()
    object.__setattr__(theorem, "module", str(path))
    object.__setattr__(theorem, "module_sha256", hashlib.sha256(path.read_bytes()).hexdigest())
    return theorem


@dataclass
class DLVerify:
    seed: int
    examples: int | None
    batch: int | None
    out_dir: Path

    def check(self, theorem, faces=("symbolic", "numeric", "mutants"), batch: int | None = None):
        from verify.engine.search import Budget
        from verify.registry import get
        from verify.testing import assert_theorem

        theorem = get(theorem) if isinstance(theorem, str) else theorem
        budget = Budget(examples=self.examples, batch=batch or self.batch or Budget().batch)
        return assert_theorem(_located(theorem), faces=tuple(faces), budget=budget, seed=self.seed,
                              out_dir=self.out_dir)


def _seed(config: pytest.Config) -> int:
    """``--dlverify-seed``, else Hypothesis's ``--hypothesis-seed`` (an integer, or any text, hashed
    as Hypothesis does not: to a 32-bit number), else 0."""
    seed = config.getoption("--dlverify-seed")
    if seed is not None:
        return seed
    text = getattr(config.option, "hypothesis_seed", None)
    if text is None:
        return 0
    try:
        return int(text) % 2**32
    except ValueError:
        import hashlib

        return int.from_bytes(hashlib.sha256(str(text).encode()).digest()[:4], "little")


def _settings(config: pytest.Config) -> DLVerify:
    out = config.getoption("--dlverify-out") or Path(config.rootpath) / ".dlverify" / "counterexamples"
    return DLVerify(
        seed=_seed(config),
        examples=config.getoption("--dlverify-examples"),
        batch=config.getoption("--dlverify-batch"),
        out_dir=Path(out),
    )


@pytest.fixture
def dlverify(request: pytest.FixtureRequest) -> DLVerify:
    return _settings(request.config)
