"""A claim's search tops up to ``Budget.meeting`` instances meeting its assumptions (search phase
4): more batches over the structures where the assumptions held, in turn, within
``Budget.topup_batches``; a failure among them is the counterexample; mutants and ablations get
no top-up; the default budget asks for 100,000."""

from __future__ import annotations

from dataclasses import replace

import pytest
from hypothesis import strategies as st

from verify import Assumption, Mutant, Theorem, Tolerance, residual, xp
from verify.engine.search import MEETING_TARGET, Budget, search
from verify.engine.replay import replay
from verify.engine.runner import run_theorem

# x >= 0 holds on about half of the instances (reals draw zeros, integers and Gaussians)
HALF = Theorem(
    id="test.topup-half",
    title="|x| = x for x >= 0",
    source="test",
    statement="|x| = x when every entry of x is >= 0",
    property=lambda s, x: residual(xp.abs(x["x"]), x["x"], xp.abs(x["x"])),
    structure=st.fixed_dictionaries({"n": st.integers(1, 2)}),
    sample=lambda rng, s: {"x": rng.maybe_abs(rng.reals(s.n))},
    tolerance=Tolerance(0.0, 0.0, "exact"),
    assumptions=[Assumption("nonnegative", "every entry >= 0", lambda s, x: xp.all(x["x"] >= 0))],
    mutants=[Mutant("negated", "|x| = -x", lambda s, x: residual(xp.abs(x["x"]), -x["x"], xp.abs(x["x"])))],
)

# false, but only on the rare instances with an entry beyond 3.5 standard deviations (P ~ 5e-4)
RARE = Theorem(
    id="test.topup-rare",
    title="Gaussians stay within 3.5",
    source="test",
    statement="every entry of a standard normal vector is below 3.5 in absolute value",
    property=lambda s, x: residual(xp.minimum(xp.abs(x["x"]), 3.5), xp.abs(x["x"]), 1.0),
    structure=st.just({"n": 1}),
    sample=lambda rng, s: {"x": rng.normal(s.n)},
    tolerance=Tolerance(0.0, 0.0, "exact"),
    expect="false",
)


def test_the_claim_is_topped_up_over_the_structures_where_its_assumptions_held():
    budget = Budget(examples=4, batch=32, guided=0.0, meeting=2_000, topup_batches=400)
    r = search(HALF, budget=budget)
    assert r.verdict == "confirmed"
    assert r.satisfied >= 2_000 and r.topup["reached"] and r.topup["target"] == 2_000
    assert r.batches == 4 + r.topup["batches"]
    # it stopped as soon as the target was met: one batch fewer would not have reached it
    assert r.satisfied - 32 < 2_000
    # every structure where the assumption held got batches (about half of its instances met it)
    assert all(row["drawn"] > 4 * 32 for row in r.structures if row["meeting_assumptions"])
    assert sum(row["meeting_assumptions"] for row in r.structures) == r.satisfied


def test_the_top_up_counts_the_work_of_the_batches_it_read_only():
    """Each top-up batch is started before the one before it is read (JAX computes it meanwhile);
    the one started after the last batch read is cancelled, so a structure's work (which chooses
    its programs, quick or optimised) is that of the batches read there, as if read one at a time."""
    from verify.engine.search import BatchStore
    from verify.values import Structure

    store = BatchStore(HALF, {"claim": HALF.property}, 32)
    r = search(HALF, budget=Budget(examples=4, batch=32, guided=0.0, meeting=2_000, topup_batches=400), store=store)
    assert r.topup["reached"] and r.topup["batches"] > 2
    assert sum(row["drawn"] for row in r.structures) == 32 * store.evaluated
    for row in r.structures:
        s = Structure(row["structure"])
        per_batch = store.cost(s, store.pools(s, 0))
        assert store.work[s] == pytest.approx(row["drawn"] // 32 * per_batch, rel=1e-12)


def test_the_top_up_stops_at_its_batches_and_says_it_fell_short():
    r = search(HALF, budget=Budget(examples=4, batch=32, guided=0.0, meeting=2_000, topup_batches=3))
    assert r.verdict == "confirmed" and r.topup["batches"] == 3 and not r.topup["reached"]
    assert r.satisfied < 2_000 and r.batches == 7


def test_the_top_up_spends_at_most_its_work_in_xlas_estimate():
    from verify.engine.search import BatchStore
    from verify.values import Structure

    store = BatchStore(HALF, {"claim": HALF.property}, 32)
    one = store.cost(Structure({"n": 1}), store.pools(Structure({"n": 1}), 0))
    assert one is not None and one > 0
    # HALF's structures n = 1 and n = 2 cost about the same: room for about 5 batches
    budget = Budget(examples=4, batch=32, guided=0.0, meeting=2_000, topup_work=5.5 * one)
    r = search(HALF, budget=budget)
    assert 3 <= r.topup["batches"] <= 6 and not r.topup["reached"]
    assert r.topup["work"] <= budget.topup_work < r.topup["work"] + 2 * one
    assert search(HALF, budget=replace(budget, topup_work=0.5 * one)).topup["batches"] == 0


def test_mutants_ablations_and_explicit_budgets_get_no_top_up():
    budget = Budget(examples=4, batch=32, guided=0.0, meeting=2_000)
    report = run_theorem(HALF, faces=("numeric", "mutants", "ablate"), budget=budget)
    assert report.numeric.topup["reached"]
    assert report.mutants[0].numeric.topup == {} and report.mutants[0].numeric.verdict == "refuted"
    assert all(a.search.topup == {} for a in report.ablations)
    assert Budget(examples=4).resolved(3).meeting == 0  # an explicit budget is what it says
    assert Budget().resolved(3).meeting == MEETING_TARGET == 100_000


def test_a_failure_in_the_top_up_is_the_counterexample():
    # 2 batches of 32 see a |x| > 3.5 with probability ~3%; 40,000 more instances miss one with
    # probability ~exp(-18)
    without = search(RARE, budget=Budget(examples=2, batch=32, guided=0.0, meeting=0))
    r = search(RARE, budget=Budget(examples=2, batch=32, guided=0.0, meeting=40_000, topup_batches=1_250))
    assert r.verdict == "refuted" and abs(float(r.counterexample.instance["x"][0])) > 3.5
    if without.verdict == "confirmed":
        assert r.counterexample.shrink["found_by"] == "top-up" and r.topup["batches"] >= 1
    assert replay(r.counterexample, RARE).reproduced


@pytest.mark.parametrize("bad", [dict(meeting=-1), dict(topup_batches=-1), dict(topup_work=-1.0)])
def test_a_negative_top_up_is_refused(bad):
    from verify import TheoremError

    with pytest.raises(TheoremError, match="non-negative"):
        Budget(**bad)


def test_the_command_line_states_the_default_top_up_limits():
    # the help is written out (the parser imports neither JAX nor the engine): it must say what Budget does
    import argparse

    from verify.cli import build_parser

    sub = next(a for a in build_parser()._actions if isinstance(a, argparse._SubParsersAction))
    text = " ".join(sub.choices["run"].format_help().split())
    limits = f"within {Budget().topup_batches:,} batches and {Budget().topup_work:.2g}".replace("e+", "e")
    assert limits in text
