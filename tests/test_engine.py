"""The engine on users' theorems: refutation with a shrunk counterexample, replay, vacuity,
NaN, rounding, and the symbolic checker's three outcomes."""

import json

import mpmath
import numpy as np
import pytest
import sympy as sp
from conftest import SMALL

from verify import Agrees, Algebra, Cases, Claim, Derivation, TheoremError, Tolerance, eq, residual, xp
from verify.backends import backend, to_highprec
from verify.engine.replay import replay
from verify.engine.runner import run_theorem
from verify.engine.search import search
from verify.records.counterexample import Counterexample
from verify.registry import load_file, theorem_of
from verify.symbolic import _check_link, check_derivation, weak_orderings


def test_false_user_theorem_is_refuted_with_a_minimal_counterexample_that_replays(data, tmp_path):
    (thm,) = load_file(data / "false_theorem.py")
    report = run_theorem(thm, faces=("numeric",), budget=SMALL, out_dir=tmp_path)
    r = report.numeric
    assert r.verdict == "refuted" and not report.ok
    cx = r.counterexample
    # shrunk to one coordinate whose values are simple (0, +-1, or integers)
    assert cx.structure == {"n": 1}
    assert all(float(v).is_integer() for arr in cx.instance.values() for v in arr.ravel())
    assert cx.real and cx.residual > 0.5
    # ReLU(x + y) != ReLU(x) + ReLU(y) needs x, y of opposite signs: check the witness is one
    x, y = cx.instance["x"][0], cx.instance["y"][0]
    assert x * y < 0
    saved = Counterexample.load(cx.path)
    assert saved.instance["x"].tolist() == cx.instance["x"].tolist()
    loaded = Counterexample.load(cx.path)
    again = replay(loaded, theorem_of(loaded))
    assert again.reproduced and again.residual == pytest.approx(cx.residual)


def test_true_user_theorem_passes_every_face(data, tmp_path):
    (thm,) = load_file(data / "true_theorem.py")
    report = run_theorem(thm, faces=("symbolic", "numeric", "mutants"), budget=SMALL, out_dir=tmp_path)
    assert report.ok, report.problems
    assert report.symbolic.verdict == "proved"
    assert report.numeric.verdict == "confirmed" and report.numeric.satisfied == SMALL.instances
    assert report.mutants[0].refuted


def test_unmet_assumptions_are_vacuous_not_confirmed(data):
    (thm,) = load_file(data / "vacuous_theorem.py")
    r = search(thm, budget=SMALL)
    assert r.verdict == "vacuous" and r.satisfied == 0 and r.drawn == SMALL.instances
    report = run_theorem(thm, faces=("numeric",), budget=SMALL)
    assert not report.ok


def test_nan_residuals_fail(data):
    (thm,) = load_file(data / "nan_theorem.py")
    r = search(thm, budget=SMALL)
    assert r.verdict == "error" and "non-finite" in r.note
    assert r.counterexample is not None and not r.counterexample.finite


def test_an_assumption_without_which_the_claim_is_undefined_is_necessary(data):
    (thm,) = load_file(data / "undefined_theorem.py")
    report = run_theorem(thm, faces=("numeric", "ablate"), budget=SMALL)
    assert report.ok and report.numeric.verdict == "confirmed"
    (ablation,) = report.ablations
    assert ablation.verdict == "necessary" and "undefined" in ablation.search.note
    cx = ablation.search.counterexample
    assert not cx.finite and cx.assumptions_held == {"nonzero": False}


def test_float64_rounding_is_not_reported_as_a_counterexample(data):
    (thm,) = load_file(data / "rounding_theorem.py")
    r = search(thm, budget=SMALL)
    assert r.verdict == "error" and "not reproduced at 50 digits" in r.note
    assert r.counterexample.residual > 0 and not r.counterexample.real


def test_ablation_without_a_drawn_violation_says_so(data):
    """An assumption the claim does not need: dropping it finds nothing, and says how many
    instances violating it were searched."""
    import dataclasses

    from verify import Assumption

    (thm,) = load_file(data / "true_theorem.py")
    needless = Assumption("first_positive", "x_0 > 0 (not needed)", lambda s, x: x["x"][0] > 0)
    thm = dataclasses.replace(thm, assumptions=[needless])
    r = search(thm, drop="first_positive", budget=SMALL)
    assert r.verdict == "confirmed"
    assert r.dropped_violated > 0  # instances with x_0 <= 0 were drawn and still no counterexample


# ---------------------------------------------------------------- symbolic face

x, y = sp.symbols("x y", real=True)


def _link(prev, expr, by):
    return _check_link(prev, eq(expr, by), {})


def test_algebra_confirmed_and_refuted_with_an_exact_witness():
    assert _link((x + y) ** 2, x**2 + 2 * x * y + y**2, Algebra("square")).status == "confirmed"
    assert _link(sp.Max(x, y) + sp.Min(x, y), x + y, Algebra("max + min")).status == "confirmed"
    wrong = _link((x + y) ** 2, x**2 + y**2, Algebra("freshman"))
    assert wrong.status == "refuted"
    point = {sp.Symbol(k, real=True): sp.Rational(v) for k, v in wrong.witness.items() if k in ("x", "y")}
    assert ((x + y) ** 2 - x**2 - y**2).subs(point) == sp.Rational(wrong.witness["lhs - rhs"]) != 0
    assert _link(sp.sqrt(2) + x, sp.sqrt(3) + x, Algebra("sqrt 2 = sqrt 3")).status == "refuted"


def test_a_true_link_sympy_cannot_confirm_is_unconfirmed_never_proved_nor_refuted():
    f = sp.Function("f")
    lhs, rhs = sp.Integral(f(x), (x, 0, 1)), sp.Integral(f(y), (y, 0, 1))
    result = check_derivation(Derivation(Claim(lhs, "==", rhs), [eq(rhs, Algebra("renaming a bound variable"))]))
    assert result.verdict == "unconfirmed" and result.chains[0].links[0].status == "unconfirmed"


def test_what_is_not_an_expression_is_an_error_and_what_sympy_cannot_evaluate_is_unconfirmed():
    with pytest.raises(TheoremError, match="not a SymPy expression"):
        eq(object(), Algebra("not an expression"))
    hopeless = sp.Integral(sp.exp(-x**2) * sp.sin(x) ** 7, (x, 0, sp.oo))  # never integrated or probed
    res = _link(hopeless, x, Algebra("hopeless"))
    assert res.status == "unconfirmed"


def test_a_silently_wrong_computer_algebra_derivative_is_flagged():
    import jax
    import jax.numpy as jnp

    A = sp.MatrixSymbol("A", 2, 2)
    # SymPy 1.14 returns 0 for d/dA [tr(A) + tr(A^2)]; the true gradient is I + 2 A^T
    wrong = sp.diff(sp.Trace(A) + sp.Trace(A**2), A)
    grad = jax.grad(lambda a: jnp.trace(a) + jnp.trace(a @ a))
    right = (sp.Identity(2) + 2 * A.T).as_explicit()
    flagged = _check_link(right, eq(wrong, Agrees(grad, [A], "SymPy's matrix derivative")), {})
    assert flagged.status == "refuted" and "disagree" in flagged.detail
    ok = _check_link(right, eq(right, Agrees(grad, [A], "the hand derivation")), {})
    assert ok.status == "cross-checked"
    # a cross-check alone never proves
    d = Derivation(Claim(right, "==", right), [eq(right, Agrees(grad, [A], "only a cross-check"))], size={"n": 2})
    assert check_derivation(d).verdict == "cross-checked"


def test_case_split_covers_every_weak_ordering():
    # ordered Bell (Fubini) numbers: weak orderings of {0} and n symbols
    syms = sp.symbols("a b c", real=True)
    assert [len(weak_orderings(syms[:n])) for n in (1, 2, 3)] == [3, 13, 75]
    assert len(weak_orderings([sp.Symbol("p", nonnegative=True)])) == 2  # p < 0 ruled out
    relu = _link(sp.Max(x, 0) + sp.Max(-x, 0), sp.Abs(x), Cases([x], "relu(x) + relu(-x) = |x|"))
    assert relu.status == "confirmed" and relu.cases == 3
    wrong = _link(sp.Max(x, 0), x, Cases([x], "relu(x) = x"))
    assert wrong.status == "refuted" and sp.Rational(wrong.witness["x"]) < 0


# ---------------------------------------------------------------- the claim is the property


def _relu_theorem(claim, **kw):
    """A user theorem whose property is ReLU(x) - ReLU(-x) = x entry by entry, with a given claim."""
    from hypothesis import strategies as st

    from verify import Theorem

    return Theorem(
        id="user.claim-vs-property", title="t", source="test", statement="s",
        property=lambda s, x: residual(xp.relu(x["x"]) - xp.relu(-x["x"]), x["x"], xp.abs(x["x"])),
        structure=st.fixed_dictionaries({"n": st.integers(1, 3)}), sample=lambda rng, s: {"x": rng.reals(s.n)},
        tolerance=Tolerance(0.0, 0.0, "exact"), derivation=Derivation(claim=claim, **kw),
    )


def test_a_false_claim_with_a_derivation_of_an_unrelated_true_identity_gets_no_proof():
    """The issue's first case: the chain proves y = y; the theorem's claim is not reached."""
    xi, i, n = sp.IndexedBase("x", real=True), sp.Symbol("i", integer=True), sp.Symbol("n", integer=True, positive=True)
    thm = _relu_theorem(Claim(sp.Max(xi[i], 0) + sp.Max(-xi[i], 0), "==", xi[i]), entries=(i, 0, n - 1),
                        chain=[eq(y, Algebra("y = y"))])
    rep = run_theorem(thm, faces=("symbolic", "numeric"), budget=SMALL)
    assert rep.symbolic.verdict != "proved" and not rep.ok


def test_a_claim_that_is_not_the_property_fails_with_the_disagreement():
    """A true identity, proved, but about another expression than the property computes."""
    xi, i, n = sp.IndexedBase("x", real=True), sp.Symbol("i", integer=True), sp.Symbol("n", integer=True, positive=True)
    other = Claim(sp.Max(xi[i], 0) + sp.Max(-xi[i], 0), "==", sp.Abs(xi[i]))  # true, but not this property
    thm = _relu_theorem(other, entries=(i, 0, n - 1), chain=[eq(sp.Abs(xi[i]), Cases([xi[i]], "sign"))])
    rep = run_theorem(thm, faces=("symbolic", "numeric"), budget=SMALL)
    assert rep.symbolic.claims[0].symbolic.verdict == "proved"  # the chain is fine ...
    assert rep.symbolic.verdict == "unconfirmed" and not rep.ok  # ... but it is not the theorem's statement
    assert any("disagree" in p for p in rep.problems)


def test_a_transposed_matrix_in_the_claim_is_caught():
    """The property computes W x; the claim says W^T x: the cross-check names the disagreement."""
    from hypothesis import strategies as st

    from verify import Theorem

    W = sp.MatrixSymbol("W", 2, 2)
    X = sp.MatrixSymbol("x", 2, 1)
    claim = Claim((W.T * X).as_explicit(), "==", (W.T * X).as_explicit())
    thm = Theorem(
        id="user.transposed", title="t", source="test", statement="s",
        property=lambda s, x: residual(x["W"] @ x["x"], x["W"] @ x["x"], xp.abs(x["W"]) @ xp.abs(x["x"])),
        structure=st.fixed_dictionaries({"n": st.just(2)}),
        sample=lambda rng, s: {"W": rng.normal((2, 2)), "x": rng.normal((2,))},
        tolerance=Tolerance(0.0, 1e-14, "two products in the same order"),
        derivation=Derivation(claim, [eq((W.T * X).as_explicit(), Algebra("the same"))], size={"n": 2}),
    )
    rep = run_theorem(thm, faces=("symbolic", "numeric"), budget=SMALL)
    assert not rep.ok and any("disagree" in p for p in rep.problems)


def test_a_symbol_assumption_the_theorem_does_not_make_is_caught():
    """The derivation takes x >= 0 (a nonnegative IndexedBase), the theorem does not assume it."""
    xn, i, n = sp.IndexedBase("x", nonnegative=True), sp.Symbol("i", integer=True), sp.Symbol("n", integer=True, positive=True)
    thm = _relu_theorem(Claim(sp.Max(xn[i], 0) - sp.Max(-xn[i], 0), "==", xn[i]), entries=(i, 0, n - 1),
                        chain=[eq(xn[i], Algebra("x >= 0"))])
    rep = run_theorem(thm, faces=("symbolic", "numeric"), budget=SMALL)
    assert not rep.ok and any("nonnegative" in p for p in rep.problems)


# ---------------------------------------------------------------- contract and backends


def test_malformed_theorems_are_rejected_with_a_clear_error(data):
    with pytest.raises(TheoremError, match="dotted lower-case"):
        load_file(data / "malformed_theorem.py")
    with pytest.raises(TheoremError, match="defines no theorem"):
        load_file(data / "no_theorem.py")
    with pytest.raises(TheoremError, match="reason"):
        Tolerance(0.0, 0.0, " ")


def test_highprec_backend_is_exact_on_float64_inputs():
    a = np.array([1.0, 1e-17])
    ah = to_highprec({"a": a})["a"]
    with mpmath.workdps(50):
        assert to_highprec({"b": np.array([0.1])})["b"][0] != mpmath.mpf("0.1")  # the float, not the decimal
    with backend("highprec"):
        total = xp.sum(ah) - ah[0]
        assert total == ah[1]  # no absorption at 50 digits
        assert xp.relu(xp.asarray(np.array([-1.0, 2.0]))).tolist() == [0, 2]
    assert float(np.sum(a) - a[0]) == 0.0  # float64 absorbs it


def test_certificate_is_json_with_what_was_established(data, tmp_path):
    from verify.records.certificate import write_certificate

    (thm,) = load_file(data / "true_theorem.py")
    report = run_theorem(thm, budget=SMALL)
    cert = json.loads(write_certificate(report, tmp_path).read_text())
    assert cert["ok"] is True and cert["theorem"]["statement_sha256"] == thm.statement_hash()
    assert cert["numeric"]["instances_satisfying_assumptions"] == SMALL.instances
    assert cert["numeric_settings"]["jax_enable_x64"] is True
    assert cert["libraries"]["jax"] and cert["symbolic"]["verdict"] == "proved"
    assert cert["mutants"][0]["refuted"] is True


def test_relu_derivative_at_zero_is_zero_in_jax():
    import jax

    from verify.backends import backend

    with backend("jax"):
        assert float(jax.grad(lambda t: xp.relu(t))(0.0)) == 0.0
        assert float(jax.grad(lambda t: xp.relu(t))(2.0)) == 1.0


def test_failure_rate_is_measured_and_certified(data):
    """ReLU(x + y) = ReLU(x) + ReLU(y) fails exactly when x and y differ in sign somewhere: with
    independent normal coordinates, probability 1/2 for n = 1 and 1 - 1/4 = 3/4 for n = 2."""
    import dataclasses

    from verify.engine.rates import failure_rate

    (thm,) = load_file(data / "false_theorem.py")
    for n, p in ((1, 0.5), (2, 0.75)):
        r = failure_rate(thm, {"n": n}, instances=4096, batch=512, seed=n)
        assert r["instances"] == r["meeting_assumptions"] == 4096
        lo, hi = r["interval95"]
        assert lo < p < hi and hi - lo < 0.06  # Wilson interval at n = 4096: half-width ~0.015
    rated = dataclasses.replace(thm, rates_on=[{"n": 1}])
    report = run_theorem(rated, faces=("numeric",), budget=SMALL)
    (r,) = report.rates
    assert r["structure"] == {"n": 1} and r["instances"] == SMALL.instances
    assert report.certificate()["failure_rates"] == report.rates


def test_failure_rate_with_no_instance_meeting_the_assumptions_is_null_not_nan(data):
    import json

    from verify.engine.rates import failure_rate

    (thm,) = load_file(data / "vacuous_theorem.py")
    r = failure_rate(thm, {"n": 1}, instances=256, batch=128, seed=0)
    assert r["meeting_assumptions"] == 0 and r["rate"] is None
    json.dumps(r, allow_nan=False)  # strict JSON


# ---------------------------------------------------------------- nothing silently wrong (issue 15)


def _toy(id, prop, sample, assumptions=(), tol=None, **kw):
    from hypothesis import strategies as st

    from verify import Theorem

    return Theorem(id=id, title="t", source="s", statement="s", property=prop,
                   structure=st.fixed_dictionaries({"n": st.integers(1, 2)}), sample=sample,
                   tolerance=tol or Tolerance(0.0, 0.0, "exact"), assumptions=assumptions, **kw)


def test_a_tolerance_must_be_a_finite_number():
    for bad in (float("inf"), float("nan"), "0.1", True):
        with pytest.raises(TheoremError):
            Tolerance(bad, 0.0, "r")
        with pytest.raises(TheoremError):
            Tolerance(0.0, bad, "r")


def test_a_sampler_that_draws_no_randomness_is_an_error():
    """NumPy's generator runs once, at trace time: every instance would be the same draw, on
    which the false claim |x| < 2.5 almost surely 'holds'."""
    rng_np = np.random.default_rng(0)
    thm = _toy("user.numpy-rng", lambda s, x: residual_(xp.maximum(xp.max(xp.abs(x["x"])) - 2.5, 0.0)),
               lambda rng, s: {"x": xp.asarray(rng_np.normal(size=s.n))})
    r = search(thm, budget=SMALL)
    assert r.verdict == "error" and "draws no randomness" in r.note


def residual_(value):
    from verify import Residual

    return Residual(value, xp.asarray(1.0))


def test_a_claim_expected_true_is_not_ok_when_its_failure_rate_saw_a_failure():
    """Normals stay below 3: the search (one coordinate, 1,280 instances) may miss it, but the
    measurement on 256 coordinates fails on about 30% of instances."""
    thm = _toy("user.normals-below-3", lambda s, x: residual_(xp.maximum(xp.max(x["x"]) - 3.0, 0.0)),
               lambda rng, s: {"x": rng.normal(s.n)}, rates_on=[{"n": 256}])
    report = run_theorem(thm, faces=("numeric",), budget=SMALL)
    (r,) = report.rates
    assert r["failing"] > 0 and not report.ok
    assert any(p.startswith("failure rate:") for p in report.problems)


def test_an_ablation_witness_violates_the_assumption_it_shows_necessary():
    """ReLU(x) = x is false on every negative x, with or without x >= -2.5: the ablation must not
    report the assumption necessary on a witness that meets it."""
    import dataclasses

    from verify import Assumption
    from verify.engine.runner import AblationResult

    thm = _toy("user.relu-identity", lambda s, x: residual(xp.relu(x["x"]), x["x"]),
               lambda rng, s: {"x": rng.uniform(s.n, -4.0, 0.0)},
               assumptions=[Assumption("above", "x >= -2.5", lambda s, x: xp.all(x["x"] >= -2.5))])
    r = search(thm, drop="above", budget=SMALL)
    assert r.verdict == "refuted" and r.counterexample.assumptions_held == {"above": False}, r.note
    assert np.all(r.counterexample.instance["x"] < -2.5)
    assert AblationResult("above", r).verdict == "necessary"
    meets = dataclasses.replace(r, counterexample=dataclasses.replace(r.counterexample,
                                                                      assumptions_held={"above": True}))
    a = AblationResult("above", meets)
    assert a.verdict == "not-shown-necessary" and "no witness" in a.as_dict()["note"]


def test_a_failed_50_digit_evaluation_is_float64_only_never_real_nor_rounding():
    """x / x at x = 0: NaN in float64, ZeroDivisionError at 50 digits."""
    thm = _toy("user.x-over-x", lambda s, x: residual(x["x"] / x["x"], xp.ones_like(x["x"])),
               lambda rng, s: {"x": rng.reals(s.n, zeros=0.5)}, tol=Tolerance(0.0, 1e-15, "one division"))
    cx = search(thm, budget=SMALL).counterexample
    assert cx.established == "float64 only" and "50-digit evaluation failed" in cx.established_note


def test_shrinking_is_budgeted_in_evaluations_and_says_when_it_stopped(data):
    import dataclasses

    (thm,) = load_file(data / "false_theorem.py")
    full = search(thm, budget=SMALL, seed=3).counterexample
    assert full.shrink["stopped_early"] is False
    assert full.shrink["value_evaluations"] <= SMALL.shrink_examples
    assert full.shrink["structure_batches"] <= SMALL.shrink_batches
    starved = dataclasses.replace(SMALL, shrink_examples=0, shrink_batches=0)
    cut = search(thm, budget=starved, seed=3).counterexample
    assert cut.shrink["stopped_early"] is True and cut.shrink["value_evaluations"] == 0
    again = search(thm, budget=starved, seed=3).counterexample
    assert again.as_dict() == cut.as_dict()  # no clock in it: the same search, the same counterexample


def test_the_block_pass_zeroes_what_the_failure_does_not_need_in_few_evaluations():
    """Of 2 arrays of 32 entries the failure needs entry 17 alone: halving the refused blocks
    finds it in 12 evaluations (the 2 arrays, then halves of the refused ones down to the entry),
    where entry by entry takes 64."""
    from verify.engine.shrink import _zero_blocks

    slots = [("a", i) for i in range(32)] + [("b", i) for i in range(32)]
    tried = []

    def fails(c):
        tried.append(c)
        return c[17] != 0

    out = _zero_blocks(slots, [3] * 64, fails, limit=100)
    assert [j for j, c in enumerate(out) if c != 0] == [17]
    assert len(tried) == 12  # b; a; a's halves; ... down to entries 16 and 17
    assert _zero_blocks(slots, [3] * 64, fails, limit=5) != out  # the budget bounds it


def test_a_failure_that_needs_one_entry_is_shrunk_to_it():
    """sum(v) <= 1 fails on every draw of v in [0.5, 2)^12, and one entry of 2 suffices: the witness
    keeps one non-zero entry, the others zeroed by the block pass (it says how many)."""
    from verify import at_most

    thm = _toy("user.sum-below-one", lambda s, x: at_most(xp.sum(x["v"]), 1.0, 1.0),
               lambda rng, s: {"v": rng.uniform(6 * s.n, 0.5, 2.0)}, tol=Tolerance(0.0, 1e-12, "a sum of 12 terms"))
    cx = search(thm, budget=SMALL, seed=0).counterexample
    assert cx.ratio > 1.0 and float(np.sum(cx.instance["v"])) > 1.0
    assert cx.shrink["nonzero_entries_after"] <= 1 < cx.shrink["nonzero_entries_before"]
    assert cx.shrink["zeroed_in_blocks"] >= cx.shrink["nonzero_entries_before"] - 1


# ---------------------------------------------------------------- the guided climb


def _corner(mass: float):
    """x0 + x1 <= 2 - c on x uniform in (0, 1]^2: false exactly on a triangle of area c^2/2 = mass."""
    from hypothesis import strategies as st

    from verify import Theorem, at_most

    c = (2.0 * mass) ** 0.5
    return c, Theorem(
        id="test.corner", title="false on a corner of mass 1e-5", source="test", statement="x0 + x1 <= 2 - c",
        expect="false", structure=st.fixed_dictionaries({"n": st.just(2)}),
        sample=lambda rng, s: {"x": rng.uniform(s.n)},
        property=lambda s, x: at_most(x["x"][0] + x["x"][1], 2.0 - c, 2.0),
        tolerance=Tolerance(0.0, 1e-12, "a sum of two numbers in (0, 1]: rounding is below 1e-15"))


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_the_guided_climb_finds_a_violation_on_1e_5_of_the_mass(seed):
    """1,280 random instances meet a region of mass 1e-5 with probability 1.3%; the climb on the
    signed slack of the inequality (flat |r| would give it nothing to climb) reaches it."""
    from verify.engine.search import Budget

    c, thm = _corner(1e-5)
    res = search(thm, budget=Budget(examples=20, batch=64, guided=0.2), seed=seed)
    assert res.verdict == "refuted"
    assert res.counterexample.shrink["found_by"] == "guided climb"
    x = res.counterexample.instance["x"]
    assert x[0] + x[1] > 2.0 - c  # the witness lies in the violating corner
    assert res.guided["found"] and 0 < res.guided["batches"] <= 4


def test_a_counterexample_is_certified_and_its_record_replays(tmp_path, data):
    """float64 -> 50 digits -> exact rationals: the false ReLU additivity has a witness whose
    residual exact arithmetic bounds beyond the tolerance; the record keeps that and replays."""
    from verify.engine.search import Budget

    thm = load_file(data / "false_theorem.py")[0]
    res = search(thm, budget=Budget(examples=3, batch=128), seed=0)
    cx = res.counterexample
    assert res.verdict == "refuted" and cx.certified
    assert cx.certification["method"] == "exact rationals"
    back = Counterexample.load(cx.save(tmp_path))
    assert back.certification == cx.certification
    again = replay(back, thm)
    assert again.reproduced and again.certification["status"] == "certified"


def test_a_guided_witness_record_loads_and_replays(tmp_path):
    """A witness of the guided climb comes from no batch (key_seed and index -1); its record must
    still be read back and replayed."""
    from verify.engine.search import Budget

    _, thm = _corner(1e-5)
    cx = search(thm, budget=Budget(examples=20, batch=64, guided=0.2), seed=0).counterexample
    assert cx.key_seed == -1
    back = Counterexample.load(cx.save(tmp_path))
    assert replay(back, thm).reproduced


def test_a_witness_is_shrunk_to_a_value_a_reader_would_write():
    """x <= 1e-4 is false for x in (1e-4, 1e-3]: the witness is shrunk to a value of one significant
    digit (0.0002, ..., 0.001), not left at the float the sampler drew."""
    from hypothesis import strategies as st

    from verify import Assumption, Theorem, at_most
    from verify.engine.search import Budget

    thm = Theorem(id="test.small", title="x <= 1e-4 (false)", source="test", statement="x <= 1e-4", expect="false",
                  structure=st.fixed_dictionaries({"n": st.just(1)}),
                  sample=lambda rng, s: {"x": rng.uniform(s.n) * 1e-3},
                  assumptions=[Assumption("small", "0 < x <= 1e-3", lambda s, x: (x["x"][0] > 0) & (x["x"][0] <= 1e-3))],
                  property=lambda s, x: at_most(x["x"][0], 1e-4, 1e-4),
                  tolerance=Tolerance(0.0, 1e-12, "one comparison"))
    for seed in range(3):
        (x,) = search(thm, budget=Budget(examples=3, batch=64), seed=seed).counterexample.instance["x"].tolist()
        assert 1e-4 < x <= 1e-3 and float(f"{x:.1g}") == x, x


def test_an_assumption_that_is_not_one_boolean_is_named():
    from hypothesis import strategies as st

    from verify import Assumption, Theorem, at_most
    from verify.engine.search import Budget

    thm = Theorem(id="test.vector-assumption", title="t", source="test", statement="x <= 1", expect="false",
                  structure=st.fixed_dictionaries({"n": st.just(2)}), sample=lambda rng, s: {"x": rng.uniform(s.n)},
                  assumptions=[Assumption("positive", "x > 0", lambda s, x: x["x"] > 0)],
                  property=lambda s, x: at_most(x["x"][0], 1.0, 1.0), tolerance=Tolerance(0.0, 1e-12, "a comparison"))
    res = search(thm, budget=Budget(examples=2, batch=16), seed=0)
    assert res.verdict == "error" and "positive: holds(s, x) must give one boolean per instance" in res.note


def test_a_value_shrink_budget_spent_mid_search_is_not_a_flaky_failure():
    """The value shrinker's budget can run out while Hypothesis replays a failing choice to
    confirm it: the replay must get the answer it got before (memoised), not a refusal that
    Hypothesis reports as a flaky test (which ended a search of T4's forward-gate mutant)."""
    import dataclasses

    thm = _toy("user.sum-is-zero", lambda s, x: residual(xp.sum(x["v"]), xp.zeros(()), xp.sum(xp.abs(x["v"])) + 1.0),
               lambda rng, s: {"v": rng.reals(6 * s.n)}, tol=Tolerance(0.0, 1e-12, "a sum of 12 terms"))
    for k in (1, 2, 3, 5, 8):
        res = search(thm, budget=dataclasses.replace(SMALL, shrink_examples=k), seed=k)
        cx = res.counterexample
        assert res.verdict == "refuted" and cx.shrink["value_evaluations"] <= k
        # it stops early only with its budget spent, and what it reports (when stopped, the last
        # failing instance Hypothesis had) fails
        assert cx.shrink["value_evaluations"] == k or not cx.shrink["values_stopped_early"]
        assert cx.ratio > 1.0
