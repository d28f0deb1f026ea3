"""The exact back-ends: z3 decisions at explicit sizes (verify.exact.decide) and certified
counterexamples by exact rationals and ball arithmetic (verify.exact.ball)."""

from __future__ import annotations

import itertools

import numpy as np
import pytest
import sympy as sp

import verify.exact.ball as B
import verify.exact.decide as D
from theorems.patel2016 import layer as drmm_layer
from theorems.tian2018 import batchnorm
from verify import Assumption, Structure, Tolerance, residual, xp
from verify.exact import claims as C
from verify.exact.ball import Certification, certify
from verify.backends import XpError
from verify.exact.decide import decide, decide_sizes

HAVE_Z3 = D.z3 is not None
HAVE_FLINT = B.flint is not None
needs_z3 = pytest.mark.skipif(not HAVE_Z3, reason="z3-solver is not installed (pip install 'dlverify[exact]'): "
                                                  "the decision back-end is not exercised")

#: per-size limit in these tests; every size below is decided in well under 3 s on 2 busy cores
LIMIT = 20.0


def _atoms(*exprs):
    """Every atom by name: indexed entries (z[0]) and plain symbols (not the IndexedBase labels)."""
    out = {}
    for e in exprs:
        labels = {i.base.label for i in e.atoms(sp.Indexed)}
        out.update({str(a): a for a in e.free_symbols if a not in labels})
    return out


def _falsified(decision, claim, premises):
    """The model names every atom and, substituted exactly, makes the claim False and every premise True."""
    atoms = _atoms(claim, *premises)
    assert set(decision.model) == set(atoms)
    assert all(isinstance(v, sp.Rational) for v in decision.model.values())
    subs = {atoms[name]: value for name, value in decision.model.items()}
    return claim.xreplace(subs) is sp.false and all(p.xreplace(subs) is sp.true for p in premises)


# ============================================================================ decide: z3


def test_without_z3_the_decision_is_skipped_and_says_why(monkeypatch):
    monkeypatch.setattr(D, "z3", None)
    d = decide(*C.switch_relu(2))
    assert d.status == "skipped" and d.solver == "" and d.model is None
    assert "z3-solver is not installed" in d.reason and "dlverify[exact]" in d.reason


@needs_z3
@pytest.mark.parametrize("D_", range(1, 7))
def test_p1_switch_relu_is_valid(D_):
    d = decide(*C.switch_relu(D_), timeout_s=LIMIT)
    assert d.status == "valid", d
    assert d.solver.startswith("z3 ") and d.model is None


@needs_z3
def test_p1_with_products_and_a_wrong_variant():
    assert decide(*C.switch_relu(3, product=True), timeout_s=LIMIT).status == "valid"
    c = [sp.IndexedBase("c")[i] for i in range(3)]
    lhs = sp.Max(*[sum(a * x for a, x in zip(s, c)) for s in itertools.product([0, 1], repeat=3)])
    wrong = sp.Eq(lhs, sp.Max(sum(c), 0))  # mutant relu_outside_sum
    d = decide(wrong, timeout_s=LIMIT)
    assert d.status == "counterexample" and _falsified(d, wrong, [])


@needs_z3
@pytest.mark.parametrize("K,P", [(K, P) for K in (1, 2, 3) for P in (1, 2, 3)])
@pytest.mark.parametrize("overlapping", [False, True])
def test_p2_max_over_translations_is_max_pooling(K, P, overlapping):
    claim, premises = C.translation_maxpool(K, P, 1 if overlapping else P)
    d = decide(claim, premises, timeout_s=LIMIT)
    assert d.status == "valid", d
    assert d.reason == ""  # the premises z >= 0 are satisfiable: not vacuous


@needs_z3
def test_p2_needs_z_nonneg_and_mean_pool_is_refuted():
    claim, _ = C.translation_maxpool(2, 2, 2)
    d = decide(claim, [], timeout_s=LIMIT)  # z_nonneg dropped
    assert d.status == "counterexample" and _falsified(d, claim, [])
    assert any(d.model[f"z[{j}]"] < 0 for j in range(2))
    claim, premises = C.translation_maxpool(2, 3, 3, pool=C.mean_pool)
    d = decide(claim, premises, timeout_s=LIMIT)
    assert d.status == "counterexample" and _falsified(d, claim, premises)


@needs_z3
@pytest.mark.parametrize("P", range(1, 7))
def test_maxpool_and_relu_commute(P):
    assert decide(*C.maxpool_relu_commute(2, P, 1), timeout_s=LIMIT).status == "valid"


@needs_z3
def test_shared_global_shift_is_refuted_and_the_model_certifies():
    claim, premises = C.global_shift_maxpool(2, 2)
    d = decide(claim, premises, timeout_s=LIMIT)
    assert d.status == "counterexample"
    assert _falsified(d, claim, premises)
    # the model as a float64 instance of the catalogue's non-theorem: certified beyond tolerance, exactly
    thm = drmm_layer.global_shift_maxpool
    x = {"z": np.array([float(d.model[f"z[{j}]"]) for j in range(2)]),
         "v": np.array([float(d.model[f"v[{i}]"]) for i in range(4)])}
    assert all(sp.Rational(float(q)) == q for q in d.model.values())  # small dyadic values: exact in float64
    cert = certify(thm.property, thm.assumptions, thm.tolerance, Structure({"K": 2, "P": 2, "overlap": 0}), x, [0, 1])
    assert cert.status == "certified" and cert.method == B.METHOD_EXACT, cert


#: resource units (z3's rlimit) for the hardest decisions below, which take 9 to 29 million: bounded
#: by z3's own step count, not by the clock, so that a busy machine cannot make them time out
HARD = 80_000_000


@needs_z3
def test_signed_layer_with_overlapping_shared_switches_is_refuted():
    claim, premises = C.signed_render_layer(3, 2, 1)
    d = decide(claim, premises, timeout_s=900.0, rlimit=HARD)
    assert d.status == "counterexample", d
    assert _falsified(d, claim, premises)
    # the middle window has a negative weight and shares a switch with each neighbour
    assert d.model["z[1]"] * d.model["z[0]"] < 0 or d.model["z[1]"] * d.model["z[2]"] < 0


@needs_z3
@pytest.mark.parametrize("K,P", [(2, 2), (2, 3), (3, 1)])
def test_signed_layer_without_overlap_is_valid(K, P):
    assert decide(*C.signed_render_layer(K, P, P), timeout_s=900.0, rlimit=HARD).status == "valid"


@needs_z3
@pytest.mark.parametrize("spread", [False, True])
def test_both_encodings_of_max_and_min_are_exact(monkeypatch, spread):
    """Each relation with a Max or Min side is equivalent to its Piecewise definition, and not to a
    wrong one, in each encoding on its own."""
    monkeypatch.setattr(D, "_ENCODINGS", (spread,))
    x, y, z, r = sp.symbols("x y z r", real=True)
    for M in (sp.Max, sp.Min):
        m = M(x, y, z, evaluate=False)
        ge = (lambda a, b: a >= b) if M is sp.Max else (lambda a, b: a <= b)
        pw = sp.Piecewise((x, sp.And(ge(x, y), ge(x, z))), (y, ge(y, z)), (z, True))
        for rel in (sp.Lt, sp.Le, sp.Gt, sp.Ge, sp.Eq, sp.Ne):
            for a, b in ((m, r), (r, m)):
                swap = {m: pw}
                assert decide(_iff(rel(a, b), rel(a.xreplace(swap), b.xreplace(swap)))).status == "valid", (M, rel)
            assert decide(_iff(rel(m, r), rel(x, r))).status == "counterexample", (M, rel)


def _iff(p, q):
    return sp.And(sp.Implies(p, q), sp.Implies(q, p))


@needs_z3
def test_symbol_assumptions_become_premises():
    p = sp.Symbol("p", positive=True)
    n = sp.Symbol("n", integer=True)
    x = sp.Symbol("x", real=True)
    assert decide(sp.Gt(p + 1, 1)).status == "valid"
    d = decide(sp.Gt(x + 1, 1))
    assert d.status == "counterexample" and d.model["x"] <= 0
    assert decide(sp.Ge(n**2, n)).status == "valid"  # true for integers
    d = decide(sp.Ge(x**2, x))
    assert d.status == "counterexample" and 0 < d.model["x"] < 1
    q = sp.Symbol("q", nonpositive=True)
    assert decide(sp.Eq(sp.Abs(q), -q)).status == "valid"


@needs_z3
def test_to_z3_gives_the_formula_and_the_definitions_of_its_fresh_variables():
    import z3

    x = sp.Symbol("x", real=True)
    formula, defs = D.to_z3(sp.Ge(sp.Max(x, 0), x))
    assert len(defs) == 3  # Max(x, 0) >= x, Max(x, 0) >= 0, and Max(x, 0) is one of them
    solver = z3.Solver()
    solver.add(*defs, z3.Not(formula))
    assert solver.check() == z3.unsat
    formula, defs = D.to_z3(sp.Ge(sp.Max(x, 0), x), spread=True)
    assert defs == [] and z3.is_or(formula)  # Max(x, 0) >= x iff x >= x or 0 >= x
    term, defs = D.to_z3(x * x - 2 * x)
    assert defs == [] and z3.is_arith(term)


@needs_z3
def test_heaviside_at_zero_follows_its_second_argument():
    x = sp.Symbol("x", real=True)
    indicator = sp.Piecewise((1, x > 0), (0, True))
    d = decide(sp.Eq(sp.Heaviside(x), indicator))  # SymPy's H(0) = 1/2
    assert d.status == "counterexample" and d.model == {"x": 0}
    assert decide(sp.Eq(sp.Heaviside(x, 0), indicator)).status == "valid"
    assert decide(sp.Eq(sp.Heaviside(x, 1), sp.Piecewise((1, x >= 0), (0, True)))).status == "valid"
    assert decide(sp.Eq(sp.sign(x) * sp.Abs(x), x)).status == "valid"


@needs_z3
def test_unsupported_operators_are_named():
    x = sp.Symbol("x", real=True)
    i = sp.Symbol("i", integer=True)
    cases = {
        sp.Gt(sp.exp(x), x): "exp",
        sp.Gt(x * sp.Float(0.5), 1): "Float",
        sp.Eq(sp.IndexedBase("v")[i], 0): "non-integer index",
        sp.Gt(1 / x, 0): "exponent -1",
        sp.Ge(sp.Piecewise((x, x > 0)), 0): "unconditional",
        sp.Gt(x * sp.pi, 1): "Pi",
    }
    for claim, name in cases.items():
        assert isinstance(claim, sp.Rel)  # not evaluated away by SymPy
        d = decide(claim)
        assert d.status == "unsupported" and name in d.reason, (claim, d)


@needs_z3
def test_irrational_models_are_not_reported_as_counterexamples():
    x = sp.Symbol("x", real=True)
    d = decide(sp.Ne(x**2, 2))  # false only at x = +-sqrt(2): no rational point falsifies it
    assert d.status == "unknown" and "irrational" in d.reason and d.model is None


@needs_z3
def test_a_model_that_does_not_recheck_fails_closed(monkeypatch):
    claim, premises = C.global_shift_maxpool(2, 2)
    monkeypatch.setattr(D, "_model", lambda solver, tr: ({a: 0 for a in tr.atoms}, False))  # a wrong model
    d = decide(claim, premises)
    assert d.status == "unknown" and "does not re-check" in d.reason and d.model is None


@needs_z3
def test_vacuous_premises_timeouts_and_sizes():
    x = sp.Symbol("x", real=True)
    d = decide(sp.Gt(x, 100), [sp.Gt(x, 1), sp.Lt(x, 0)])
    assert d.status == "valid" and d.reason.startswith("vacuous")
    d = decide(*C.signed_render_layer(4, 2, 2), timeout_s=0.5)
    assert d.status == "timeout" and d.model is None and d.seconds < 30
    out = decide_sizes(lambda n: C.switch_relu(n), [1, 2, 3], timeout_s=LIMIT)
    assert list(out) == [1, 2, 3] and all(v.status == "valid" for v in out.values())


@needs_z3
def test_a_resource_limit_decides_the_same_whatever_the_clock():
    claim, premises = C.signed_render_layer(2, 3, 3)  # valid; z3 needs about 29 million units
    short = [decide(claim, premises, timeout_s=900.0, rlimit=2_000_000) for _ in range(2)]
    assert all(d.status == "timeout" and "2,000,000 z3 resource units" in d.reason for d in short), short
    assert decide(claim, premises, timeout_s=900.0, rlimit=HARD).status == "valid"
    out = decide_sizes(lambda n: C.switch_relu(n), [1, 2], timeout_s=900.0, rlimit=HARD)
    assert all(v.status == "valid" for v in out.values())
    # what a decision costs does not depend on what was decided before it in the process (the
    # order differs with --jobs)
    first = decide(*C.translation_maxpool(2, 3, 1), timeout_s=900.0, rlimit=HARD)
    decide(*C.switch_relu(3), timeout_s=900.0, rlimit=HARD)
    again = decide(*C.translation_maxpool(2, 3, 1), timeout_s=900.0, rlimit=HARD)
    assert first.status == again.status == "valid" and first.units == again.units > 0


@needs_z3
def test_the_exact_face_is_bounded_by_resource_units(monkeypatch):
    from verify.engine import decided

    structures = [{"D": D_} for D_ in (1, 2, 3)]
    full = decided.decide_claim(drmm_layer.switch_relu.derivations[0], structures)
    monkeypatch.setattr(decided, "PER_SIZE_RLIMIT", 2_000)  # far too few units for the larger sizes
    cut = decided.decide_claim(drmm_layer.switch_relu.derivations[0], structures)
    assert len(cut.sizes) < len(full.sizes) and "z3 resource units" in cut.note, (full, cut)


# ============================================================================ certify: rationals and balls

S0 = Structure({})
EXACT = Tolerance(0.0, 0.0, "exact claim")


def _ratio(cert: Certification) -> float:
    return float("inf") if cert.ratio_lower == "inf" else float(cert.ratio_lower)


def test_a_catalogue_mutant_is_certified_by_exact_rationals():
    thm = drmm_layer.translation_maxpool
    s = Structure({"K": 2, "P": 2, "overlap": 0})
    x = {"z": np.array([1.0, 0.5]), "v": np.array([0.0, 1.0, -3.0, 0.25])}
    mutant = thm.mutant("mean_pool").property
    cert = certify(mutant, thm.assumptions, thm.tolerance, s, x, [0])  # z_nonneg (P2 has no other assumption)
    assert cert.status == "certified" and cert.method == B.METHOD_EXACT, cert
    # |r| = |(1 + 0.125) - (0.5 + 0.5 * -1.375)| = 1.3125 exactly, bound 1e-13 * scale 4.5
    assert 2.9e12 < _ratio(cert) <= 1.3125 / (1e-13 * 4.5)
    # the theorem itself on the same instance: exactly within tolerance, not certified
    cert = certify(thm.property, thm.assumptions, thm.tolerance, s, x, [0])
    assert cert.status == "not-certified" and "within tolerance exactly" in cert.reason


def test_an_enforced_assumption_that_fails_exactly_blocks_certification():
    thm = drmm_layer.translation_maxpool
    s = Structure({"K": 2, "P": 2, "overlap": 0})
    x = {"z": np.array([1.0, -0.5]), "v": np.array([0.0, 1.0, -3.0, 0.25])}
    cert = certify(thm.mutant("mean_pool").property, thm.assumptions, thm.tolerance, s, x, [0])
    assert cert.status == "not-certified" and "z_nonneg does not hold" in cert.reason
    assert certify(thm.mutant("mean_pool").property, thm.assumptions, thm.tolerance, s, x, []).status == "certified"


def _sqrt_claim(s, x):
    """A wrong claim with a square root: sqrt(a^2 + b^2) = |a| + |b|."""
    a, b = x["a"], x["b"]
    return residual(xp.sqrt(a * a + b * b), xp.abs(a) + xp.abs(b))


@pytest.mark.parametrize("kind", ["arb", "iv"])
def test_a_property_with_sqrt_is_certified_by_balls(monkeypatch, kind):
    if kind == "arb" and not HAVE_FLINT:
        pytest.skip("python-flint is not installed (pip install 'dlverify[exact]'): arb balls are not exercised")
    monkeypatch.setattr(B, "ball_kind", lambda: kind)
    tol = Tolerance(0.0, 1e-13, "a few roundings")
    cert = certify(_sqrt_claim, [], tol, S0, {"a": np.array(1.0), "b": np.array(1.0)}, [])
    assert cert.status == "certified", cert
    assert cert.method == (B.METHOD_ARB if kind == "arb" else B.METHOD_IV)
    assert "sqrt: not rational" in cert.reason  # exact rationals were tried first and said why they stopped
    assert 2.9e12 < _ratio(cert) <= (2 - 2**0.5) / (2e-13)  # |r| = 2 - sqrt 2 against 1e-13 * 2
    # at a perfect square the same property stays rational: certified exactly
    cert = certify(_sqrt_claim, [], tol, S0, {"a": np.array(3.0), "b": np.array(4.0)}, [])
    assert cert.status == "certified" and cert.method == B.METHOD_EXACT


def test_a_catalogue_counterexample_with_sqrt_is_certified_by_balls():
    """Tian 2018 Thm 5's mutant sigma_squared (c1/sigma^2 for c1/sigma) at N = 3, f = (0, 1, 2):
    sigma = sqrt(2/3) is irrational, so only balls can certify it (arb, or mpmath iv without flint)."""
    thm = batchnorm.bn_projection
    x = {"f": np.array([0.0, 1.0, 2.0]), "g": np.array([1.0, 0.0, 0.0]), "c1": np.array(1.0),
         "c0": np.array(0.0), "eps": np.array(0.0), "biased": np.array(1.0)}
    s = Structure({"N": 3})
    enforce = range(len(thm.assumptions))
    cert = certify(thm.mutant("sigma_squared").property, thm.assumptions, thm.tolerance, s, x, enforce)
    assert cert.status == "certified" and cert.method == (B.METHOD_ARB if HAVE_FLINT else B.METHOD_IV), cert
    assert _ratio(cert) > 1
    cert = certify(thm.property, thm.assumptions, thm.tolerance, s, x, enforce)
    assert cert.status == "not-certified" and "certainly within tolerance" in cert.reason, cert


def test_counterexamples_found_by_search_are_certified_or_not_as_they_are_real(data):
    """The engine's own witnesses: ReLU additivity (false) is certified exactly; the zero-tolerance
    associativity 'counterexample' (float64 rounding, which the 50-digit check already rejects)
    is not certified."""
    from conftest import SMALL

    from verify.registry import load_file
    from verify.engine.search import search

    (false,) = load_file(data / "false_theorem.py")
    cx = search(false, budget=SMALL).counterexample
    cert = certify(false.property, false.assumptions, false.tolerance, Structure(cx.structure), cx.instance, [])
    assert cx.real and cert.status == "certified" and cert.method == B.METHOD_EXACT, cert
    (rounding,) = load_file(data / "rounding_theorem.py")
    cx = search(rounding, budget=SMALL).counterexample
    assert cx.residual > 0 and not cx.real
    cert = certify(rounding.property, [], rounding.tolerance, Structure(cx.structure), cx.instance, [])
    assert cert.status == "not-certified" and "within tolerance exactly" in cert.reason


def test_a_float64_rounding_failure_is_not_certified():
    def assoc(s, x):
        return residual((x["a"] + x["b"]) + x["c"], x["a"] + (x["b"] + x["c"]))

    x = {"a": np.array(0.1), "b": np.array(0.2), "c": np.array(0.3)}
    assert abs((0.1 + 0.2) + 0.3 - (0.1 + (0.2 + 0.3))) > 1e-17  # float64 "fails" the exact claim
    cert = certify(assoc, [], EXACT, S0, x, [])
    assert cert.status == "not-certified" and cert.method == B.METHOD_EXACT
    assert "within tolerance exactly" in cert.reason and cert.ratio_lower == ""


def test_an_assumption_on_the_edge_is_decided_exactly_or_fails_closed():
    positive = Assumption("a_positive", "a > 0", lambda s, x: xp.all(x["a"] > 0))
    wrong = lambda s, x: residual(x["a"] + 1.0, 0.0)  # noqa: E731 - fails by >= 1 everywhere
    cert = certify(wrong, [positive], EXACT, S0, {"a": np.array(0.0)}, [0])
    assert cert.status == "not-certified" and "a_positive does not hold" in cert.reason
    assert certify(wrong, [positive], EXACT, S0, {"a": np.array(5e-324)}, [0]).status == "certified"
    # exp(a) - 1 > 0 at a = 1e-40: true, but a 128-bit ball of exp(a) - 1 straddles 0
    grows = Assumption("exp_grows", "exp(a) > 1", lambda s, x: xp.all(xp.exp(x["a"]) - 1.0 > 0))
    cert = certify(wrong, [grows], EXACT, S0, {"a": np.array(1e-40)}, [0])
    assert cert.status == "not-certified" and "undecided" in cert.reason and "exp: not rational" in cert.reason
    assert certify(wrong, [grows], EXACT, S0, {"a": np.array(1e-20)}, [0]).status == "certified"
    # a straddling comparison inside the property (at xp.where) fails closed too, naming the line
    branch = lambda s, x: residual(xp.where(xp.exp(x["a"]) - 1.0 > 0, 1.0, 0.0), 0.0)  # noqa: E731
    cert = certify(branch, [], EXACT, S0, {"a": np.array(1e-40)}, [])
    assert cert.status == "not-certified" and "undecided" in cert.reason and "test_exact.py:" in cert.reason


def test_an_enclosure_straddling_the_tolerance_is_not_certified(monkeypatch):
    # sqrt(2)^2 - 2 = 0 exactly; the ball of it straddles 0 and a zero tolerance: undecided
    prop = lambda s, x: residual(xp.sqrt(x["a"]) * xp.sqrt(x["a"]), x["a"])  # noqa: E731
    cert = certify(prop, [], EXACT, S0, {"a": np.array(2.0)}, [])
    assert cert.status == "not-certified" and "meets the tolerance bound" in cert.reason
    # division by an interval containing 0 gives a non-finite enclosure: not certified
    prop = lambda s, x: residual(1.0 / (xp.sqrt(x["a"]) * xp.sqrt(x["a"]) - x["a"]), 0.0)  # noqa: E731
    cert = certify(prop, [], EXACT, S0, {"a": np.array(2.0)}, [])
    assert cert.status == "not-certified" and "not finite" in cert.reason


def test_an_unsupported_function_is_named():
    prop = lambda s, x: residual(xp.cumsum(x["a"]), 0.0)  # noqa: E731
    cert = certify(prop, [], EXACT, S0, {"a": np.array([1.0, 2.0])}, [])
    assert cert.status == "not-certified" and "xp.cumsum is not supported" in cert.reason


def test_without_any_ball_arithmetic_certification_is_unavailable(monkeypatch):
    monkeypatch.setattr(B, "ball_kind", lambda: None)
    cert = certify(_sqrt_claim, [], EXACT, S0, {"a": np.array(1.0), "b": np.array(1.0)}, [])
    assert cert.status == "unavailable" and cert.method == ""


@pytest.mark.parametrize("kind", ["arb", "iv"])
def test_ball_comparisons_decide_or_raise(kind):
    if kind == "arb" and not HAVE_FLINT:
        pytest.skip("python-flint is not installed (pip install 'dlverify[exact]'): arb balls are not exercised")
    ops = B.BallOps(kind)
    with B.bound(ops):
        third = ops.lift(1) / 3  # a ball of positive radius around 1/3
        one = ops.lift(1)
        assert third < one and one > third and third <= one and third != one and not (third == one)
        assert one == ops.lift(1.0) and not (one != ops.lift(1))
        for compare in ("<", "<=", ">", ">=", "==", "!="):
            with pytest.raises(B.Undecided):
                eval(f"third {compare} third * 1")  # two overlapping balls
        wide = ops.lift(1) / 3 - ops.lift(1) / 3  # contains 0 and more
        for f in (bool, lambda v: v.sign(), lambda v: v > 0):
            with pytest.raises(B.Undecided):
                f(wide)
        with pytest.raises(B.Undecided):
            ops.heaviside(np.array([wide], dtype=object))
        # continuous functions need no decision: an enclosure comes back
        m = ops.max(np.array([wide, ops.lift(0)], dtype=object))
        lo, hi = m._bounds()
        assert lo <= 0 <= hi and hi < 1e-30
        assert ops.relu(np.array([wide], dtype=object))[0]._bounds()[0] <= 0


def test_exact_backend_is_exact_and_names_what_it_cannot_do():
    ops = B.ExactOps()
    with B.bound(ops):
        a = xp.asarray(np.array([0.1, 0.2]))
        total = xp.sum(a)
        assert total.v == B.Fraction(0.1) + B.Fraction(0.2)  # not the float 0.30000000000000004
        assert xp.sqrt(xp.asarray(np.array([2.25])))[0].v == B.Fraction(3, 2)
        for name in ("sqrt", "exp", "log", "tanh"):
            with pytest.raises(B.NotRational, match=name):
                getattr(xp, name)(xp.asarray(np.array([2.0])))
        with pytest.raises(B.NotRational):
            xp.inf
        with pytest.raises(XpError, match="xp.fft"):  # outside the xp contract on every backend
            xp.fft
        i = xp.asarray(np.array([2, 0, 1]))
        assert i.dtype.kind == "i" and xp.where(i > 0, 1, 0).dtype.kind == "i"  # indices stay integers
        assert xp.max(a).v == B.Fraction(0.2) and xp.argmax(a) == 1
        assert (xp.eye(2) @ a)[1].v == B.Fraction(0.2)
        spread = xp.broadcast_to(xp.reshape(a, (1, 2)), (3, 2))  # rearranges: the exact values, repeated
        assert spread.shape == (3, 2) and spread[2, 1].v == B.Fraction(0.2)
        # NumPy functions that only combine entries still see exact values, even of plain float input
        dot = xp.dot(np.array([0.1, 0.2]), np.array([1.0, 1.0]))
        assert dot.v == B.Fraction(0.1) + B.Fraction(0.2) != B.Fraction(0.1 + 0.2)
        with pytest.raises(B.UnsupportedFunction, match="arange"):
            xp.arange(0.0, 1.0, 0.1)  # a float grid would be rounded in float64


def test_every_xp_function_of_the_catalogue_is_supported():
    """The explicit lists cover every xp.NAME that the catalogue and the engine's models use."""
    import re
    from pathlib import Path

    root = Path(__file__).resolve().parent.parent
    used = set()
    for path in [*root.glob("theorems/**/*.py"), *root.glob("verify/**/*.py")]:  # after the split into subpackages too
        used |= set(re.findall(r"\bxp\.([a-z_][a-z_0-9]*)", path.read_text()))
    # dtypes; xp.jax exists only inside xp.float64_only thunks, which the exact backends skip
    used -= {"float64", "int64", "bool_", "jax"}
    missing = sorted(used - set(B.SUPPORTED))
    assert not missing, f"xp functions without an exact/ball form: {missing}"
    for ops in (B.ExactOps(), B.BallOps("iv")):
        for name in B.SUPPORTED:
            if name in ("inf",) and isinstance(ops, B.ExactOps):
                continue
            assert getattr(ops, name) is not None or name == "newaxis"


# ---------------------------------------------------------------- the exact face of a run


@needs_z3
def test_a_run_decides_a_true_claim_at_the_sizes_it_covered(data):
    """The user's ReLU odd-part claim, written out entry by entry at n = 1, 2, ...: valid for every
    real x at every size the solver answered, listed in the trust rows."""
    from conftest import SMALL

    from verify.engine.runner import run_theorem
    from verify.registry import load_file

    rep = run_theorem(load_file(data / "true_theorem.py")[0], faces=("symbolic", "numeric", "exact"), budget=SMALL)
    dec = rep.symbolic.claims[0].decided
    assert dec.status == "decided" and {"n": 1} in dec.sizes
    assert all(set(z) == {"n"} for z in dec.sizes)
    rows = [r for r in rep.trust() if r["face"] == "exact"]
    assert rows and rows[0]["class"] == "decided" and rows[0]["sizes"] == dec.sizes
    assert rep.ok


@needs_z3
def test_a_run_refutes_a_false_claim_exactly():
    """ReLU is not additive: the solver's model is a counterexample, re-checked exactly."""
    from conftest import SMALL
    from hypothesis import strategies as st

    from verify import Claim, Derivation, Theorem
    from verify.engine.runner import run_theorem

    x, y, i = sp.IndexedBase("x", real=True), sp.IndexedBase("y", real=True), sp.Symbol("i", integer=True)
    n = sp.Symbol("n", integer=True, positive=True)
    thm = Theorem(
        id="test.relu-additive", title="ReLU is additive (false)", source="test", statement="relu(x+y)=relu x+relu y",
        expect="false", structure=st.fixed_dictionaries({"n": st.integers(1, 3)}),
        sample=lambda rng, s: {"x": rng.reals(s.n), "y": rng.reals(s.n)},
        property=lambda s, v: residual(xp.relu(v["x"] + v["y"]), xp.relu(v["x"]) + xp.relu(v["y"]),
                                       xp.abs(v["x"]) + xp.abs(v["y"])),
        tolerance=Tolerance(0.0, 1e-13, "one addition per side"),
        derivation=Derivation(entries=(i, 0, n - 1),
                              claim=Claim(sp.Max(x[i] + y[i], 0), "==", sp.Max(x[i], 0) + sp.Max(y[i], 0))))
    rep = run_theorem(thm, faces=("symbolic", "numeric", "exact"), budget=SMALL)
    dec = rep.symbolic.claims[0].decided
    assert dec.status == "refuted" and dec.counterexample["size"] == {"n": 1}
    model = {k: sp.Rational(v) for k, v in dec.counterexample["model"].items()}
    xv, yv = model.get("x[0]", 0), model.get("y[0]", 0)
    assert max(xv + yv, 0) != max(xv, 0) + max(yv, 0)  # the model really is a counterexample
    replayed = dec.counterexample["numeric"]  # and the property, evaluated on it, fails as well
    assert replayed["replayed"] and replayed["fails"] and replayed["established"] == "real"
    assert rep.ok  # a stated non-theorem, refuted


def test_without_the_solver_nothing_is_decided_and_it_says_so(monkeypatch, data):
    from verify.engine.decided import decide_claim
    from verify.registry import load_file

    monkeypatch.setattr(D, "z3", None)
    dec = decide_claim(load_file(data / "true_theorem.py")[0].derivations[0], [{"n": 1}])
    assert dec.status == "skipped" and "pip install" in dec.note and not dec.sizes


def test_a_claim_at_one_depth_is_not_sized_from_a_structure_of_another():
    """saliency-homogeneous states one claim per depth; its widths n0..n_depth are read from the
    structure. Deciding it at the structures searched reads a structure of depth 1 for the depth-1
    claim only: the depth-3 claim's n3 is a width that structure does not have (it was read all
    the same, and ended a whole `verify run` with an IndexError)."""
    from theorems.koo import backprop
    from verify.engine.decided import _members, _sizes_of

    thm = backprop.saliency_homogeneous
    s = Structure({"depth": 1, "widths": (2, 3)})
    sized = {m.size["depth"]: _sizes_of(m, s) for m in _members(thm.derivations[0])}
    assert sized[2] is None and sized[3] is None
    assert sorted((str(k), v) for k, v in sized[1].items()) == [("n0", 2), ("n1", 3)]


def test_a_line_of_the_package_is_named_the_same_wherever_it_is_installed(tmp_path, monkeypatch):
    """A certification's reason names the property's line; for dlverify's own files (a catalogue
    model, say) it is shown from the package, not by the installation's absolute path, so that the
    record, and the content hash in its file name, are the same on every machine."""
    import verify.models.linalg as linalg

    monkeypatch.chdir(tmp_path)  # not inside the installation
    assert B._shown(linalg.__file__) == "verify/models/linalg.py"
    assert B._shown(str(tmp_path / "mine.py")) == "mine.py"  # a user's file: from where the run was started
