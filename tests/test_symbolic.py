"""The symbolic face: a derivation proves its own claim or nothing, the scope is computed, the
named rules check their premises and reject what does not meet them."""

from __future__ import annotations

import time

import pytest
import sympy as sp

from verify import (
    Agrees, Algebra, Cases, Claim, Derivation, Fact, Lemma, MaxOver, MaxSum, Monotone, TheoremError, Unfold, eq, ge, le,
)
from verify.symbolic import check_derivation

a = sp.IndexedBase("a")
t = sp.IndexedBase("t")
z = sp.IndexedBase("z", real=True)
zp = sp.IndexedBase("z", nonnegative=True)
u = sp.IndexedBase("u", real=True)
v = sp.IndexedBase("v", real=True)
i, j = sp.symbols("i j", integer=True)
D, K, P = sp.symbols("D K P", integer=True, positive=True)
tau = sp.Symbol("tau", integer=True)
x, y, c = sp.symbols("x y c", real=True)

SWITCHES = MaxOver(sp.Sum(a[i] * z[i] * u[i], (i, 0, D - 1)), (a, [0, 1]))
RELUS = sp.Sum(sp.Max(z[i] * u[i], 0), (i, 0, D - 1))


def p1_chain():
    return [
        eq(sp.Sum(MaxOver(a[i] * z[i] * u[i], (a, [0, 1])), (i, 0, D - 1)), MaxSum("term i reads only a[i]")),
        eq(sp.Sum(sp.Max(0, z[i] * u[i]), (i, 0, D - 1)), Unfold("one switch takes two values")),
        eq(RELUS, Algebra("Max is symmetric")),
    ]


def test_a_true_claim_over_a_symbolic_size_is_proved_for_all_sizes():
    res = check_derivation(Derivation(Claim(SWITCHES, "==", RELUS), p1_chain()))
    assert res.verdict == "proved" and res.scope.all_sizes and "D" in str(res.scope)
    assert res.rules == ["max-sum separability"]


def test_a_false_claim_with_an_unrelated_true_derivation_is_not_proved():
    """Every link is true, but the chain starts from something else than the claim: no proof."""
    false_claim = Claim(SWITCHES, "==", sp.Sum(sp.Abs(z[i] * u[i]), (i, 0, D - 1)))
    res = check_derivation(Derivation(false_claim, [eq(y, Algebra("y = y"))]))
    assert res.verdict == "refuted" and res.witness  # the claim itself fails at a rational point
    assert "not confirmed" in res.gap or "ends at" in res.gap


def test_true_links_that_do_not_reach_the_claim_are_unconfirmed_and_name_the_gap():
    claim = Claim(SWITCHES, "==", RELUS)
    res = check_derivation(Derivation(claim, p1_chain()[:1]))
    assert res.verdict == "unconfirmed"
    assert "the chain ends at" in res.gap and "right side is" in res.gap


def test_the_claim_must_not_be_a_relation_sympy_already_evaluated():
    with pytest.raises(TheoremError, match="evaluated to True"):
        Derivation(sp.Eq(y, y), [])


def test_explicit_sizes_give_exactly_those_sizes():
    cc = sp.IndexedBase("c", real=True)

    def build(D):
        lhs = MaxOver(sp.Sum(a[i] * cc[i], (i, 0, D - 1)), (a, [0, 1]))
        rhs = sum(sp.Max(cc[k], 0) for k in range(D))
        return Derivation(Claim(lhs, "==", rhs), [
            eq(sp.Sum(MaxOver(a[i] * cc[i], (a, [0, 1])), (i, 0, D - 1)), MaxSum("term i reads a[i]")),
            eq(rhs, Unfold("each switch takes two values; the sum has D terms")),
        ])

    built = []

    def counted(D):
        built.append(D)
        return build(D)

    family = Derivation.for_sizes(counted, D=[1, 2, 3])
    assert built == []
    assert family.component is None and built == [1]  # the first member names the component
    res = check_derivation(family)
    assert res.verdict == "proved" and not res.scope.all_sizes
    assert str(res.scope) == "D in {1, 2, 3}"
    assert [m.size for m in family.members] == [{"D": 1}, {"D": 2}, {"D": 3}]
    assert built == [1, 2, 3]  # each built once


def test_a_family_member_that_is_no_derivation_is_refused_when_built():
    family = Derivation.for_sizes(lambda D: Derivation(Claim(y, "==", y), []) if D == 1 else "no", D=[1, 2])
    assert family.component is None
    with pytest.raises(TheoremError, match=r"build\(\{'D': 2\}\) must return a Derivation, got str"):
        family.members


def test_an_explicit_claim_must_say_its_size():
    with pytest.raises(TheoremError, match="explicit size"):
        Derivation(Claim(z[0] + z[1], "==", z[1] + z[0]), [eq(z[1] + z[0], Algebra("commute"))])
    d = Derivation(Claim(z[0] + z[1], "==", z[1] + z[0]), [eq(z[1] + z[0], Algebra("commute"))], size={"D": 2})
    assert str(check_derivation(d).scope) == "D in {2}"


# ----------------------------------------------------------------------------- max-sum premise


GLOBAL_SHIFT = MaxOver(sp.Sum(zp[j] * v[P * j + tau], (j, 0, K - 1)), (tau, 0, P - 1))
MAXPOOL = sp.Sum(zp[j] * MaxOver(v[P * j + tau], (tau, 0, P - 1)), (j, 0, K - 1))


def test_max_sum_rejects_a_shared_scalar_shift_and_the_false_claim_is_refuted():
    """The issue's case: one shared global shift written as a plain Symbol must not pass."""
    step = eq(sp.Sum(MaxOver(zp[j] * v[P * j + tau], (tau, 0, P - 1)), (j, 0, K - 1)), MaxSum("shared shift"))
    res = check_derivation(Derivation(Claim(GLOBAL_SHIFT, "==", MAXPOOL), [step]))
    assert res.verdict == "refuted" and "shared by every term" in res.chains[0].links[0].detail


@pytest.mark.parametrize("term", [
    zp[j] * v[P * j + sp.Symbol("t")],          # a plain Symbol with the optimised variable's name
    zp[j] * v[P * j + t[j + 1]],                # another block's entry
    zp[j] * v[P * j + t[0]],                    # a fixed entry shared by every term
    zp[j] * sp.Max(v[P * j + t[j]], t[0]),      # inside a function, another entry
    zp[j] * sp.Sum(v[P * j + t[j]], (i, 0, sp.Symbol("t"))),  # in a bound of a Sum
], ids=["plain-symbol", "other-index", "fixed-entry", "inside-function", "in-a-bound"])
def test_max_sum_rejects_every_occurrence_outside_block_j(term):
    claim = Claim(MaxOver(sp.Sum(term, (j, 0, K - 1)), (t, 0, P - 1)), "==", MAXPOOL)
    res = check_derivation(Derivation(claim, [eq(sp.Sum(MaxOver(term, (t, 0, P - 1)), (j, 0, K - 1)), MaxSum("x"))]))
    assert res.verdict != "proved"
    assert "premise fails" in res.chains[0].links[0].detail


def test_max_pooling_with_independent_translations_is_proved_for_all_sizes():
    lhs = MaxOver(sp.Sum(zp[j] * v[P * j + t[j]], (j, 0, K - 1)), (t, 0, P - 1))
    chain = [
        eq(sp.Sum(MaxOver(zp[j] * v[P * j + t[j]], (t, 0, P - 1)), (j, 0, K - 1)), MaxSum("term j reads t[j]")),
        eq(sp.Sum(MaxOver(zp[j] * v[P * j + tau], (tau, 0, P - 1)), (j, 0, K - 1)), Unfold("t[j] is one variable")),
        eq(MAXPOOL, Monotone(lambda w: zp[j] * w, "z_j >= 0")),
    ]
    res = check_derivation(Derivation(Claim(lhs, "==", MAXPOOL), chain))
    assert res.verdict == "proved" and str(res.scope) == "all sizes (K, P)"
    assert res.rules == ["max-sum separability", "monotone max"]


def test_monotone_rejects_a_map_that_is_not_monotone():
    lhs = MaxOver(sp.Abs(v[tau]), (tau, 0, P - 1))
    res = check_derivation(Derivation(Claim(lhs, "==", sp.Abs(MaxOver(v[tau], (tau, 0, P - 1)))),
                                      [eq(sp.Abs(MaxOver(v[tau], (tau, 0, P - 1))), Monotone(sp.Abs, "|.|"))]))
    assert res.verdict != "proved" and "not shown increasing" in res.chains[0].links[0].detail


def test_monotone_rejects_a_map_that_reads_the_optimised_variable():
    lhs = MaxOver(tau * v[tau], (tau, 0, P - 1))
    res = check_derivation(Derivation(Claim(lhs, "==", tau * MaxOver(v[tau], (tau, 0, P - 1))),
                                      [eq(tau * MaxOver(v[tau], (tau, 0, P - 1)), Monotone(lambda w: tau * w, "x"))]))
    assert res.verdict != "proved"


# ----------------------------------------------------------------------------- relations and matrices


def test_a_link_relation_outside_eq_le_ge_is_an_error():
    from verify.symbolic import Link

    for rel in ("<", ">", "foo"):
        with pytest.raises(TheoremError, match="relation"):
            Link(rel, x, Algebra("x"))
    with pytest.raises(TheoremError, match="relation"):
        Claim(x, "<", y)


def test_a_true_inequality_written_with_le_is_proved_and_a_false_one_refuted():
    claim = Claim(sp.Max(x, 0) - x, "<=", sp.Abs(x))
    d = Derivation(claim, [le(sp.Abs(x), Cases([x], "sign of x"))])
    assert check_derivation(d).verdict == "proved"
    wrong = Derivation(Claim(sp.Abs(x), "<=", sp.Max(x, 0) - x - 1), [le(sp.Max(x, 0) - x - 1, Cases([x], "no"))])
    res = check_derivation(wrong)
    assert res.verdict == "refuted" and res.witness


def test_mixed_directions_prove_nothing_even_for_a_true_claim():
    """max(x, y) <= max(x, y) + |x - y| >= x: both links true, but <= then >= concludes nothing."""
    claim = Claim(sp.Max(x, y), ">=", x)
    d = Derivation(claim, [le(sp.Max(x, y) + sp.Abs(x - y), Cases([x, y], "adds |x - y| >= 0")),
                           ge(x, Cases([x, y], "max(x, y) + |x - y| >= x"))])
    res = check_derivation(d)
    assert res.verdict == "unconfirmed" and "compose" in res.gap


def test_matrix_equalities_are_checked_entrywise_quickly():
    A = sp.Matrix(2, 2, sp.symbols("a0:4", real=True))
    B = sp.Matrix(2, 2, sp.symbols("b0:4", real=True))
    t0 = time.perf_counter()
    ok = Derivation(Claim((A * B).T, "==", B.T * A.T), [eq(B.T * A.T, Algebra("transpose of a product"))],
                    size={"n": 2})
    assert check_derivation(ok).verdict == "proved"
    zeros = Derivation(Claim(sp.zeros(2, 1), "==", sp.zeros(2, 1)), [eq(sp.zeros(2, 1), Algebra("0 = 0"))],
                       size={"n": 2})
    assert check_derivation(zeros).verdict == "proved"
    bad = Derivation(Claim((A * B).T, "==", A.T * B.T), [eq(A.T * B.T, Algebra("wrong order"))], size={"n": 2})
    res = check_derivation(bad)
    assert res.verdict == "refuted" and res.witness
    assert time.perf_counter() - t0 < 60  # generous: this is not a timing test, only "not minutes"


def test_matrix_symbols_of_symbolic_size():
    n = sp.Symbol("n", integer=True, positive=True)
    A, B = sp.MatrixSymbol("A", n, n), sp.MatrixSymbol("B", n, n)
    res = check_derivation(Derivation(Claim((A * B).T, "==", B.T * A.T), [eq(B.T * A.T, Algebra("(AB)^T"))]))
    assert res.verdict == "proved" and res.scope.all_sizes


# ----------------------------------------------------------------------------- facts and cross-checks


def test_a_lemma_is_used_by_name_and_only_when_proved():
    fact = Fact("relu_split", Claim(sp.Max(c, 0) - sp.Max(-c, 0), "==", c), [eq(c, Cases([c], "sign of c"))])
    claim = Claim(2 * (sp.Max(c, 0) - sp.Max(-c, 0)), "==", 2 * c)
    ok = Derivation(claim, [eq(2 * c, Lemma("relu_split", "substitute"))], facts=[fact])
    assert check_derivation(ok).verdict == "proved"
    broken = Fact("relu_split", Claim(sp.Max(c, 0) + sp.Max(-c, 0), "==", c), [eq(c, Cases([c], "wrong"))])
    claim2 = Claim(2 * (sp.Max(c, 0) + sp.Max(-c, 0)), "==", 2 * c)
    assert check_derivation(Derivation(claim2, [eq(2 * c, Lemma("relu_split", "x"))], facts=[broken])).verdict != "proved"


def test_a_numeric_cross_check_never_proves():
    import numpy as np

    claim = Claim(sp.diff(sp.sin(x) ** 2, x), "==", sp.sin(2 * x))
    d = Derivation(claim, [eq(sp.sin(2 * x), Agrees(lambda xv: np.sin(2 * xv), [x], "numerically"))])
    assert check_derivation(d).verdict == "cross-checked"


def test_a_family_keeps_the_sizes_left_symbolic_in_its_scope():
    """``for_sizes(P=[2, 3])`` with K symbolic in every member proves "P in {2, 3}, all K"."""
    K, j = sp.Symbol("K", integer=True, positive=True), sp.Symbol("j", integer=True)
    v = sp.IndexedBase("v", real=True)

    def build(P):
        claim = Claim(sp.Sum(v[j], (j, 0, K - 1)) * P, "==", sp.Sum(P * v[j], (j, 0, K - 1)))
        return Derivation(claim=claim, chain=[eq(sp.Sum(P * v[j], (j, 0, K - 1)), Algebra("constant factor"))])

    res = check_derivation(Derivation.for_sizes(build, P=[2, 3]))
    assert res.verdict == "proved" and str(res.scope) == "P in {2, 3}, all K", (res.verdict, str(res.scope), res.gap)


def test_renaming_summation_dummies_is_never_refuted():
    """A true link that only renames dummies (p[c, f] summed over f, against p[c, g] summed over g)
    must not be refuted: the probe would give p[c, f] and p[c, g] independent values."""
    from verify.symbolic import _probe

    c, f, g = (sp.Symbol(n, integer=True) for n in "cfg")
    F = sp.Symbol("F", integer=True, positive=True)
    p = sp.IndexedBase("p", real=True)
    diff = sp.Sum(p[c, f], (f, 0, F - 1)) - sp.Sum(p[c, g], (g, 0, F - 1))
    assert _probe(diff, "==") is None
    k, z = sp.Symbol("k", integer=True), sp.IndexedBase("z", real=True)
    assert _probe(z[k] * sp.KroneckerDelta(k, 0) - z[0] * sp.KroneckerDelta(k, 0), "==") is None
