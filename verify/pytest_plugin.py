"""pytest plugin (registered as ``dlverify`` through the ``pytest11`` entry point).

Adds ``--dlverify-seed`` and ``--dlverify-examples`` and a ``dlverify`` fixture whose
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
    group.addoption("--dlverify-seed", type=int, default=0, help="master seed for dlverify searches")
    group.addoption("--dlverify-examples", type=int, default=None,
                    help="Hypothesis examples (batches) per dlverify search")


class TheoremItem(pytest.Item):
    """A theorem declared in a test module, run as one test."""

    def __init__(self, *, theorem, **kwargs) -> None:
        super().__init__(**kwargs)
        self.theorem = theorem

    def runtest(self) -> None:
        settings = _settings(self.config, self.config._tmp_path_factory)  # type: ignore[attr-defined]
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
    if _is_theorem(obj) and isinstance(collector, pytest.Module):
        return TheoremItem.from_parent(collector, name=f"{name}[{obj.id}]", theorem=obj)
    return None


@dataclass
class DLVerify:
    seed: int
    examples: int | None
    out_dir: Path

    def check(self, theorem, faces=("symbolic", "numeric", "mutants"), batch: int | None = None):
        from verify.engine.search import Budget
        from verify.testing import assert_theorem

        default = Budget()
        budget = Budget(examples=self.examples or default.examples, batch=batch or default.batch)
        return assert_theorem(theorem, faces=tuple(faces), budget=budget, seed=self.seed, out_dir=self.out_dir)


def _settings(config: pytest.Config, tmp_path_factory: pytest.TempPathFactory) -> DLVerify:
    return DLVerify(
        seed=config.getoption("--dlverify-seed"),
        examples=config.getoption("--dlverify-examples"),
        out_dir=tmp_path_factory.mktemp("dlverify-counterexamples"),
    )


@pytest.fixture
def dlverify(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> DLVerify:
    return _settings(request.config, tmp_path_factory)
