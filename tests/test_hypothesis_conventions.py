"""Hypothesis's conventions in dlverify searches: explicit examples first, the example database
(saved failures replayed first), the phases, the verbosity, and in pytest the settings profile and
``--hypothesis-show-statistics``."""

from __future__ import annotations

import dataclasses
import json

import numpy as np
import pytest
from hypothesis import Phase, Verbosity
from hypothesis.database import InMemoryExampleDatabase

from verify import Example, TheoremError
from verify.engine.runner import run_theorem
from verify.engine.search import Budget, _encode, database_key, search
from verify.engine.settings import Conventions
from verify.registry import load_file

TINY = Budget(3, 128)
ALL = tuple(p for p in Phase if p is not Phase.explain)


@pytest.fixture
def false_theorem(data):
    return load_file(str(data / "false_theorem.py"))[0]


@pytest.fixture
def true_theorem(data):
    return load_file(str(data / "true_theorem.py"))[0]


# ---------------------------------------------------------------- explicit examples


def test_a_failing_explicit_example_is_the_counterexample_before_any_batch(false_theorem):
    # ReLU(1 + -1) = 0 but ReLU(1) + ReLU(-1) = 1: a known failure, given as a (structure, values) pair
    thm = dataclasses.replace(false_theorem, examples=[({"n": 1}, {"x": [1.0], "y": [-1.0]})])
    res = search(thm, budget=TINY, seed=1)
    assert res.verdict == "refuted"
    assert res.explicit == {"examples": 1, "ran": 1, "failing": 1}
    assert res.batches == 0 and res.drawn == 1  # nothing was drawn before it
    cx = res.counterexample
    assert cx.shrink["found_by"] == "explicit example" and cx.key_seed == -1
    assert cx.refutes and cx.structure == {"n": 1}
    # without the explicit phase the example is skipped and the batches find the failure
    off = search(thm, budget=TINY, seed=1, conventions=Conventions(phases=(Phase.generate, Phase.shrink)))
    assert off.explicit == {"examples": 1, "ran": 0, "failing": 0}
    assert off.counterexample.shrink["found_by"] != "explicit example" and off.batches >= 1


def test_explicit_examples_run_in_every_search_of_the_theorem(true_theorem):
    """The claim passes its example, the mutant ``plus`` (ReLU(x) + ReLU(-x) = x) fails on it
    (x = -1: 1 != -1), and both searches say it ran; the certificate records it."""
    from verify.records.io import dumps
    from verify.records.schema import validator

    thm = dataclasses.replace(true_theorem, examples=[Example({"n": 1}, {"x": [-1.0]}, note="a negative entry")])
    report = run_theorem(thm, faces=("numeric", "mutants"), budget=TINY, seed=0)
    assert report.numeric.verdict == "confirmed"
    assert report.numeric.explicit == {"examples": 1, "ran": 1, "failing": 0}
    (mutant,) = report.mutants
    assert mutant.numeric.explicit["failing"] == 1
    assert mutant.numeric.counterexample.shrink["found_by"] == "explicit example"
    cert = report.certificate()
    assert cert["numeric"]["explicit_examples"] == {"examples": 1, "ran": 1, "failing": 0}
    assert cert["numeric"]["phases"] == ["explicit", "generate", "target", "shrink"]
    pytest.importorskip("jsonschema")
    validator("certificate").validate(json.loads(dumps(cert)))


@pytest.mark.parametrize("example, message", [
    (({"n": 1}, {"x": [1.0, 2.0], "y": [-1.0]}), "x has shape (2,), the sampler draws (1,)"),
    (({"m": 1}, {"x": [1.0], "y": [-1.0]}), "structure keys ['m'] are not the strategy's ['n']"),
    (({"n": 1}, {"x": [1.0]}), "values name ['x'], the sampler draws ['x', 'y']"),
    (({"n": 1}, {"x": [1.0], "y": ["a"]}), "y holds <U1 values, the sampler draws float64"),
])
def test_a_malformed_example_is_a_one_line_theorem_error(false_theorem, example, message):
    thm = dataclasses.replace(false_theorem, examples=[example])
    with pytest.raises(TheoremError) as err:
        search(thm, budget=TINY)
    assert str(err.value) == f"theorem user.relu-additive: example 0: {message}"


def test_examples_are_checked_when_the_theorem_is_built(false_theorem):
    with pytest.raises(TheoremError, match="example 0 must be a verify.Example"):
        dataclasses.replace(false_theorem, examples=[{"n": 1}])
    with pytest.raises(TheoremError, match="example values must be a non-empty mapping"):
        Example({"n": 1}, {})


# ---------------------------------------------------------------- the example database


def test_a_saved_failure_is_replayed_first_whatever_the_seed(false_theorem):
    db = InMemoryExampleDatabase()
    conv = Conventions(phases=ALL, database=db)
    first = search(false_theorem, budget=TINY, seed=1, conventions=conv)
    assert first.verdict == "refuted" and first.database["saved"]
    key = database_key(false_theorem, "claim", None)
    (saved,) = list(db.fetch(key))
    # another seed: the saved failure is the first thing run, and no batch is drawn
    again = search(false_theorem, budget=TINY, seed=2, conventions=conv)
    assert again.database == {"replayed": 1, "failing": 1, "deleted": 0, "saved": True}
    assert again.batches == 0 and again.counterexample.shrink["found_by"] == "example database"
    assert again.counterexample.refutes
    # the key names the theorem, its statement and the variant: another variant sees nothing saved
    assert database_key(false_theorem, "claim", "some_assumption") != key
    assert database_key(dataclasses.replace(false_theorem, statement="changed"), "claim", None) != key
    # without the reuse phase nothing is replayed (and the failure found again is saved again)
    no_reuse = search(false_theorem, budget=TINY, seed=2,
                      conventions=Conventions(phases=(Phase.generate, Phase.shrink), database=db))
    assert no_reuse.database["replayed"] == 0 and no_reuse.batches >= 1


def test_saved_entries_that_no_longer_fail_or_fit_are_deleted(true_theorem):
    db = InMemoryExampleDatabase()
    key = database_key(true_theorem, "claim", None)
    db.save(key, _encode({"n": 2}, {"x": np.array([1.5, -2.0])}))  # the claim holds here
    db.save(key, _encode({"n": 2}, {"x": np.array([1.5])}))  # the wrong shape: a stale entry
    res = search(true_theorem, budget=TINY, seed=0, conventions=Conventions(phases=ALL, database=db))
    assert res.verdict == "confirmed"
    assert res.database == {"replayed": 1, "failing": 0, "deleted": 2, "saved": False}
    assert list(db.fetch(key)) == []


# ---------------------------------------------------------------- phases and verbosity


def test_without_the_shrink_phase_the_counterexample_is_reported_as_found(false_theorem):
    res = search(false_theorem, budget=TINY, seed=1, conventions=Conventions(phases=(Phase.generate,)))
    cx = res.counterexample
    assert cx.shrink["method"] == "none" and cx.shrink["value_evaluations"] == 0
    shrunk = search(false_theorem, budget=TINY, seed=1).counterexample
    assert shrunk.shrink["method"] != "none"
    assert any(not np.array_equal(cx.instance[k], shrunk.instance[k]) for k in cx.instance)


def test_without_generate_only_the_explicit_examples_run(true_theorem):
    thm = dataclasses.replace(true_theorem, examples=[({"n": 2}, {"x": [1.0, -3.0]})])
    res = search(thm, budget=TINY, seed=0, conventions=Conventions(phases=(Phase.explicit,)))
    assert res.batches == 0 and res.drawn == 1 and res.coverage["covered"] == 0
    assert res.verdict == "confirmed"
    assert search(true_theorem, budget=TINY, conventions=Conventions(phases=(Phase.explicit,))).verdict == "vacuous"


def test_the_target_phase_is_the_guided_climb(true_theorem):
    budget = Budget(20, 64)  # the climb needs 20 batches
    assert search(true_theorem, budget=budget, seed=0).guided["batches"] > 0
    off = search(true_theorem, budget=budget, seed=0,
                 conventions=Conventions(phases=(Phase.generate, Phase.shrink)))
    assert off.guided == {} and off.batches == 20  # its batches went to random structures


def test_verbose_prints_a_line_per_phase_and_quiet_nothing(false_theorem, capsys):
    search(false_theorem, budget=TINY, seed=1)
    assert capsys.readouterr().out == ""
    search(false_theorem, budget=TINY, seed=1, conventions=Conventions(verbosity=Verbosity.verbose))
    out = capsys.readouterr().out
    assert "dlverify: user.relu-additive claim: coverage: 1 of 6 structures of the small scope, failing" in out
    assert "shrink phase:" in out and "failing batch" not in out  # per batch only at debug


# ---------------------------------------------------------------- in pytest


CONFTEST = """
from hypothesis import Phase, Verbosity, settings
from hypothesis.database import DirectoryBasedExampleDatabase

settings.register_profile("few", max_examples=2, verbosity=Verbosity.verbose,
                          phases=[Phase.explicit, Phase.generate])
settings.register_profile("saving", database=DirectoryBasedExampleDatabase("saved-examples"))
"""


def test_the_settings_profile_and_statistics_reach_the_searches(pytester, data):
    """``--hypothesis-profile few``: 2 batches per search (max_examples), no shrink phase (the
    mutant's counterexample unshrunk), verbose lines; ``--hypothesis-show-statistics`` prints them."""
    pytester.makeconftest(CONFTEST)
    pytester.makepyfile(test_declared=(data / "true_theorem.py").read_text() + f"""

def test_fixture(dlverify):
    from verify.registry import load_file

    dlverify.check(load_file({str(data / "true_theorem.py")!r})[0], faces=("numeric",), batch=64)
""")
    result = pytester.runpytest_subprocess("--hypothesis-profile", "few", "--hypothesis-show-statistics", "-s",
                                           "-p", "no:cacheprovider")
    result.assert_outcomes(passed=2)
    result.stdout.fnmatch_lines(["*test_declared.py::test_fixture (dlverify user.relu-odd-part, seed 0):",
                                 "*- claim: confirmed in * seconds: 2 batches, 128 instances drawn*"])
    assert "reuse phase" not in result.stdout.str()  # not one of the profile's phases
    result.stdout.fnmatch_lines([
        "*dlverify: user.relu-odd-part claim: coverage: 1 of 4 structures of the small scope",
        "*dlverify: user.relu-odd-part claim: generate phase: 1 random batches",
        "*Hypothesis Statistics*",
        "*test_declared.py::relu_odd_part?user.relu-odd-part? (dlverify user.relu-odd-part, seed 0):",
        "*- claim: confirmed in * seconds: 2 batches, 1024 instances drawn, 1024 meeting the assumptions, *",
        "*- phases: explicit, generate",
        "*- mutant:plus: refuted in * seconds: 1 batches*",
        "*- shrink phase: none (0 structure batches, 0 value evaluations); found by coverage",
    ])


def test_failures_go_to_the_profiles_database_and_come_back_first(pytester, data):
    pytester.makeconftest(CONFTEST)
    pytester.makepyfile(test_declared=(data / "false_theorem.py").read_text())
    args = ("--hypothesis-profile", "saving", "--hypothesis-show-statistics", "-p", "no:cacheprovider",
            "--dlverify-examples", "3")
    first = pytester.runpytest_subprocess(*args, "--dlverify-seed", "1")
    first.assert_outcomes(failed=1)
    first.stdout.fnmatch_lines(["*reuse phase: 0 saved failures replayed, 0 failing again, 0 deleted",
                                "*the counterexample saved to the example database"])
    assert any((pytester.path / "saved-examples").rglob("*"))
    again = pytester.runpytest_subprocess(*args, "--dlverify-seed", "2")
    again.assert_outcomes(failed=1)
    again.stdout.fnmatch_lines(["*- claim: refuted in * seconds: 0 batches, 1 instances drawn*",
                                "*reuse phase: 1 saved failures replayed, 1 failing again*",
                                "*found by example database"])
    # --hypothesis-seed: like Hypothesis, no database
    seeded = pytester.runpytest_subprocess(*args, "--hypothesis-seed", "2")
    seeded.assert_outcomes(failed=1)
    assert "reuse phase" not in seeded.stdout.str() and "claim: refuted" in seeded.stdout.str()


# ---------------------------------------------------------------- on the command line


def _with_example(data, tmp_path, example: str):
    text = (data / "false_theorem.py").read_text().replace("from verify import", "from verify import Example,")
    path = tmp_path / "with_example.py"
    path.write_text(text.replace("    tolerance=Tolerance(", f"    examples=[{example}],\n    tolerance=Tolerance(", 1))
    return path


def test_the_command_line_runs_explicit_examples_first(data, tmp_path):
    import subprocess
    import sys

    path = _with_example(data, tmp_path, 'Example({"n": 2}, {"x": [1.0, 0.5], "y": [-1.0, 0.25]})')
    proc = subprocess.run([sys.executable, "-m", "verify.cli", "check", str(path), "--json", "--examples", "3",
                           "--batch", "128", "--out", str(tmp_path / "cx")], capture_output=True, text=True)
    numeric = json.loads(proc.stdout)["theorems"][0]["numeric"]
    assert numeric["explicit_examples"] == {"examples": 1, "ran": 1, "failing": 1}
    assert numeric["batches"] == 0 and numeric["counterexample"]["shrink"]["found_by"] == "explicit example"
    assert numeric["counterexample"]["structure"] == {"n": 2} and numeric["verdict"] == "refuted"
    assert numeric["example_database"] == {} and "reuse" not in numeric["phases"]  # no database on the CLI
    bad = _with_example(data, tmp_path, '({"n": 2}, {"x": [1.0], "y": [-1.0, 0.25]})')
    proc = subprocess.run([sys.executable, "-m", "verify.cli", "check", str(bad), "--examples", "3"],
                          capture_output=True, text=True)
    assert proc.returncode == 2 and "Traceback" not in proc.stderr, proc.stderr
    assert proc.stderr.strip() == ("verify: error: theorem user.relu-additive: example 0: x has shape (1,), "
                                   "the sampler draws (2,)")
