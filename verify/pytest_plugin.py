"""pytest plugin (registered as ``dlverify`` through the ``pytest11`` entry point).

Adds ``--dlverify-seed`` and ``--dlverify-examples`` and a ``dlverify`` fixture whose
``check(theorem)`` runs a theorem's faces with those settings and fails the test with the shrunk
counterexample and its replay command::

    def test_my_theorem(dlverify):
        dlverify.check(my_theorem)            # a verify.Theorem or a catalogue id
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


@dataclass
class DLVerify:
    seed: int
    examples: int | None
    out_dir: Path

    def check(self, theorem, faces=("symbolic", "numeric", "mutants"), batch: int | None = None):
        from verify.search import Budget
        from verify.testing import assert_theorem

        default = Budget()
        budget = Budget(examples=self.examples or default.examples, batch=batch or default.batch)
        return assert_theorem(theorem, faces=tuple(faces), budget=budget, seed=self.seed, out_dir=self.out_dir)


@pytest.fixture
def dlverify(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> DLVerify:
    return DLVerify(
        seed=request.config.getoption("--dlverify-seed"),
        examples=request.config.getoption("--dlverify-examples"),
        out_dir=tmp_path_factory.mktemp("dlverify-counterexamples"),
    )
