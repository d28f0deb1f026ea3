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

Inside pytest the searches follow Hypothesis's conventions: the active settings profile
(``--hypothesis-profile``, ``settings.load_profile``) gives their phases, verbosity, example
database and (unless ``--dlverify-examples``) their number of batches, ``--hypothesis-seed``
their seed, and ``--hypothesis-show-statistics`` prints their statistics (see :func:`conventions`
and docs/pytest.md).
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
        settings = _settings(self.config, self)
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


#: Hypothesis's own ``max_examples``: a profile that keeps it leaves each search sized to its theorem
HYPOTHESIS_MAX_EXAMPLES = 100


@dataclass
class DLVerify:
    seed: int
    examples: int | None
    batch: int | None
    out_dir: Path
    #: the test item whose ``hypothesis_statistics`` receive each check's statistics
    node: pytest.Item | None = None
    #: ``--hypothesis-seed`` was given: like Hypothesis, then use no example database
    forced_seed: bool = False

    def check(self, theorem, faces=("symbolic", "numeric", "mutants"), batch: int | None = None):
        """Run ``theorem``'s faces under the active Hypothesis profile; fail with the shrunk
        counterexample and its replay command if anything did not come out as expected."""
        from verify.engine.runner import FACES, run_theorem
        from verify.engine.search import Budget
        from verify.registry import get
        from verify.testing import failure_message

        theorem = get(theorem) if isinstance(theorem, str) else theorem
        unknown = set(faces) - set(FACES)
        if unknown:
            raise ValueError(f"unknown faces {sorted(unknown)}; choose from {FACES}")
        conv, examples = conventions(self.forced_seed)
        budget = Budget(examples=self.examples or examples, batch=batch or self.batch or Budget().batch)
        report = run_theorem(_located(theorem), faces=tuple(faces), budget=budget, seed=self.seed,
                             out_dir=self.out_dir, conventions=conv)
        if self.node is not None:  # read by Hypothesis's plugin for --hypothesis-show-statistics
            previous = getattr(self.node, "hypothesis_statistics", "")
            text = statistics(report, self.node.nodeid)
            self.node.hypothesis_statistics = f"{previous}\n\n{text}" if previous else text
        if not report.ok:
            raise AssertionError(failure_message(report))
        return report


def conventions(forced_seed: bool = False):  # noqa: ANN201
    """The active Hypothesis settings profile (``settings()``) as dlverify searches honour it, and
    the number of batches it asks for (``None``: sized to each theorem).

    ``phases``, ``verbosity`` and ``database`` as :class:`verify.engine.settings.Conventions` says;
    ``max_examples``: one Hypothesis example is one batch, so a profile's ``max_examples`` other than
    Hypothesis's default (100) is the number of batches per search (``--dlverify-examples`` wins);
    under ``--hypothesis-seed`` no database, as Hypothesis does. ``derandomize``, ``deadline``,
    ``suppress_health_check``, ``report_multiple_bugs``, ``print_blob`` and ``backend`` change
    nothing: every search is deterministic from its seed and never has a deadline."""
    from dataclasses import replace

    from hypothesis import settings

    from verify.engine.settings import Conventions

    active = settings()
    conv = Conventions.of(active)
    if forced_seed:
        conv = replace(conv, database=None)
    examples = active.max_examples if active.max_examples != HYPOTHESIS_MAX_EXAMPLES else None
    return conv, examples


def statistics(report, nodeid: str) -> str:  # noqa: ANN001
    """Hypothesis-style statistics of a run's searches (what ``--hypothesis-show-statistics`` prints)."""
    searches = [report.numeric] + [m.numeric for m in report.mutants] + [a.search for a in report.ablations]
    lines = [f"{nodeid} (dlverify {report.theorem.id}, seed {report.seed}):", ""]
    for r in (r for r in searches if r is not None):
        lines.append(f"  - {r.variant}: {r.verdict} in {r.seconds:.2f} seconds: {r.batches} batches, "
                     f"{r.drawn} instances drawn, {r.satisfied} meeting the assumptions, {r.nontrivial} non-trivial")
        lines.append(f"    - phases: {', '.join(r.phases) or 'none'}")
        if r.explicit.get("examples"):
            lines.append(f"    - explicit phase: {r.explicit['ran']} of {r.explicit['examples']} examples ran, "
                         f"{r.explicit['failing']} failing")
        if r.database and "reuse" in r.phases:
            lines.append(f"    - reuse phase: {r.database['replayed']} saved failures replayed, "
                         f"{r.database['failing']} failing again, {r.database['deleted']} deleted")
        if r.database.get("saved"):
            lines.append("    - the counterexample saved to the example database")
        if r.coverage:
            lines.append(f"    - coverage: {r.coverage['covered']} of {r.coverage['structures']} structures "
                         "of the small scope")
        if r.guided:
            lines.append(f"    - target phase (guided climb): {r.guided['batches']} batches")
        cx = r.counterexample
        if cx is not None:
            lines.append(f"    - shrink phase: {cx.shrink['method']} ({cx.shrink['structure_batches']} structure "
                         f"batches, {cx.shrink['value_evaluations']} value evaluations); found by "
                         f"{cx.shrink['found_by']}")
    return "\n".join(lines)


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


def _settings(config: pytest.Config, node: pytest.Item | None = None) -> DLVerify:
    out = config.getoption("--dlverify-out") or Path(config.rootpath) / ".dlverify" / "counterexamples"
    return DLVerify(
        seed=_seed(config),
        examples=config.getoption("--dlverify-examples"),
        batch=config.getoption("--dlverify-batch"),
        out_dir=Path(out),
        node=node,
        forced_seed=getattr(config.option, "hypothesis_seed", None) is not None,
    )


@pytest.fixture
def dlverify(request: pytest.FixtureRequest) -> DLVerify:
    return _settings(request.config, request.node)
