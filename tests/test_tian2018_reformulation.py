"""Tian (2018) reformulation, T1-T4 (theorems/tian2018/reformulation.py) on the exact finite
teacher/student model (verify/models/teacher.py).

Kept small: most checks evaluate properties eagerly on a handful of sampled instances of one
fixed structure (no per-structure compile); two searches use Budget(examples=10, batch=64).
"""

from __future__ import annotations

import jax.numpy as jnp
import numpy as np
import pytest
from hypothesis import given, settings

from theorems.tian2018 import reformulation as M
from verify.backends import backend
from verify.engine.evaluate import batch_sampler
from verify.engine.search import Budget, search
from verify.models import teacher as TT
from verify.symbolic import check_derivation
from verify.values import Structure, as_residuals

SMALL = Budget(examples=10, batch=64)


def _instances(s, k=12, seed=7):
    xs = batch_sampler(TT.sample_network)(s, seed, k)
    return [{key: jnp.asarray(v[i]) for key, v in xs.items()} for i in range(k)]


def _worst(prop, s, x, tol=M.TOL):
    with backend("jax"):
        res = as_residuals(prop(s, x))
    return max(float(np.max(np.abs(np.asarray(r.value)) / np.maximum(tol.bound(np.abs(np.asarray(r.scale))), 1e-300)))
               for r in res.values())


def _holds(assumptions, s, x):
    with backend("jax"):
        return all(bool(a.holds(s, x)) for a in assumptions)


# ----------------------------------------------------------------------------- the model


@pytest.mark.parametrize("d", [2, 3, 5, 8, 12])
def test_pair_tree_is_valid(d):
    tree = TT.pair_tree(d)
    T = TT.tables(tree, "lossless")
    assert T.regions[-1][0] == tuple(range(d)) and T.N == 2**d
    assert T.mz[T.top] == 2**d  # a lossless top is injective on the whole input


def test_tables_lossless_xor_label():
    tree = TT.TREES["d4-pairs"]
    lossless, label, xor = (TT.tables(tree, t) for t in ("lossless", "label_top", "xor_all"))
    for r in range(len(tree)):  # lossless: z_r determines the region's content
        pairs = set(zip(lossless.zid[r], lossless.cid[r]))
        assert len(pairs) == lossless.mz[r] == lossless.mc[r]
    assert label.mz[label.top] == 2 and np.array_equal(label.zid[label.top], label.y)
    assert all(m == 2 for m in xor.mz)  # parity everywhere
    assert np.array_equal(xor.zid[xor.top], xor.y)  # non-overlapping leaves: top parity = label


def test_bad_trees_rejected():
    with pytest.raises(ValueError):
        TT.tables((((0,), ()), ((1,), ()), ((0,), (0,))), "lossless")  # top not the whole input
    with pytest.raises(ValueError):
        TT.tables((((0, 1), ()), ((0, 1), ())), "lossless")  # region 0 has no parent


def test_forward_backward_matches_a_per_input_loop():
    s = TT.structure("d5-overlap", "xor_mid", 2)
    T = TT.tables_of(s)
    x = _instances(s, 1)[0]
    with backend("jax"):
        net = TT.forward_backward(s, x)
    xn = {k: np.asarray(v) for k, v in x.items()}
    for i in range(T.N):  # plain per-input forward and backward, no matrices over inputs
        f, g = {}, {}
        for r, (px, ch) in enumerate(T.regions):
            pre = (T.X[i, list(px)] @ xn[f"w{r}"] if not ch else sum(f[b] @ xn[f"w{r}_{b}"] for b in ch)) + xn[f"b{r}"]
            f[r] = pre if r == T.top else np.maximum(pre, 0.0)
            np.testing.assert_allclose(np.asarray(net["F"][r])[i], f[r], rtol=1e-12, atol=1e-12)
        g[T.top] = np.eye(2)[T.y[i]] - f[T.top]
        for r in reversed(range(T.top)):
            pa = T.parent[r]
            g[r] = (f[r] > 0) * (xn[f"w{pa}_{r}"] @ g[pa])
            np.testing.assert_allclose(np.asarray(net["G"][r])[i], g[r], rtol=1e-12, atol=1e-12)


def test_probabilities_positive_and_normalised():
    s = TT.structure("d4-deep", "lossless", 1)
    for x in _instances(s, 6):
        p = np.asarray(TT.probabilities(x))
        assert (p > 0).all() and abs(p.sum() - 1) < 1e-12


@settings(max_examples=15, deadline=None, database=None)
@given(TT.teacher_structures())
def test_strategy_draws_valid_structures(s):
    T = TT.tables_of(Structure(s))
    assert len(T.kinds) == len(T.regions) and T.top == len(T.regions) - 1


# ----------------------------------------------------------------------------- conditions


def test_conditions_by_teacher():
    dev = {}
    for teacher in ("lossless", "label_top", "xor_leaves"):
        s = TT.structure("d4-pairs", teacher, 2)
        xs = _instances(s, 16)
        with backend("jax"):
            dev[teacher] = {name: [float(fn(s, x)) for x in xs] for name, fn in (
                ("focus", TT.focus_deviation), ("broadness", TT.broadness_deviation),
                ("decorrelation", TT.decorrelation_deviation), ("lossless", TT.lossless_deviation))}
    assert all(max(v) < 1e-12 for v in dev["lossless"].values())
    assert max(dev["label_top"]["broadness"]) > 1e-2 and max(dev["label_top"]["focus"]) < 1e-12
    assert max(dev["label_top"]["decorrelation"]) < 1e-12  # lower regions lossless, top linear
    # XOR leaves: focus holds for product P(x) (some instances) and fails otherwise; decorrelation fails
    assert min(dev["xor_leaves"]["focus"]) < 1e-12 < max(dev["xor_leaves"]["focus"])
    assert max(dev["xor_leaves"]["decorrelation"]) > 1e-3 and min(dev["xor_leaves"]["lossless"]) > 0.1


# ----------------------------------------------------------------------------- T1 .. T4, eagerly


@pytest.mark.parametrize("teacher", ["xor_all", "label_top"])
def test_t1_exact_for_any_teacher_and_mutants_refuted(teacher):
    s = TT.structure("d5-overlap", teacher, 2)
    xs = _instances(s, 8)
    assert max(_worst(M.marginalised_gradient.property, s, x) for x in xs) <= 1
    for m in M.marginalised_gradient.mutants:
        assert max(_worst(m.property, s, x) for x in xs) > 1, m.name


def test_t4_exact_for_lossless_and_every_mutant_refuted():
    s = TT.structure("d5-overlap", "lossless", 2)
    xs = _instances(s, 8)
    assert all(_holds(M.matrix_form.assumptions, s, x) for x in xs)
    assert max(_worst(M.matrix_form.property, s, x) for x in xs) <= 1
    for m in M.matrix_form.mutants:
        assert max(_worst(m.property, s, x) for x in xs) > 1, m.name


def test_t2_and_t3_exact_for_lossless_and_t2_agrees_with_t4():
    s = TT.structure("d4-deep", "lossless", 2)
    for x in _instances(s, 4):
        for thm in (M.reformulation, M.weight_update, M.lossless_teacher):
            assert _holds(thm.assumptions, s, x)
            assert _worst(thm.property, s, x) <= 1, thm.id
        with backend("jax"):  # the scalar (T2) and matrix (T4) forms are the same numbers
            for a, b in zip(M.reformulation_terms(s, x), M.matrix_form_terms(s, x)):
                for (_, r1, _), (_, r2, _) in zip(a, b):
                    np.testing.assert_allclose(np.asarray(r1), np.asarray(r2), rtol=1e-10, atol=1e-12)


def test_label_top_breaks_the_backward_identity_by_a_lot():
    s = TT.structure("d4-pairs", "label_top", 2)  # the 4-pixel parity teacher of formalisation T3
    worst = []
    for x in _instances(s, 8):
        assert _holds(M.label_top.assumptions, s, x)
        with backend("jax"):
            _, bwd, _ = M.reformulation_terms(s, x)
        worst.append(max(float(np.max(np.abs(np.asarray(l - r)))) for l, r, _ in bwd))
    assert max(worst) > 0.05  # O(0.1-1), not rounding


def test_xor_and_decorrelation_failures_are_real():
    """Focus and broadness hold (product P, tuple top over XOR leaves) but decorrelation does
    not: the forward/backward identities then fail, as the ablation of `decorrelation` finds."""
    s = TT.structure("d4-pairs", "xor_leaves", 2)
    found = False
    for x in _instances(s, 32, seed=11):
        with backend("jax"):
            ok = bool(M.FOCUS.holds(s, x)) and bool(M.BROADNESS.holds(s, x)) and not bool(M.DECORRELATION.holds(s, x))
        if ok and _worst(M.reformulation.property, s, x) > 1:
            found = True
            break
    assert found


# ----------------------------------------------------------------------------- symbolic and search


def test_symbolic_tower_and_grouping():
    assert check_derivation(M.marginalised_gradient.derivation).verdict == "proved-to-3"
    assert check_derivation(M.matrix_form.derivation).verdict == "proved-to-3"


def test_label_top_refuted_by_search_with_small_witness():
    res = search(M.label_top, budget=SMALL, seed=1)
    assert res.verdict == "refuted"
    cx = res.counterexample
    assert cx.real and cx.highprec_residual.startswith(("0.", "1", "2", "3", "4", "5", "6", "7", "8", "9"))
    assert len(cx.structure["tree"][-1][0]) <= 4 and cx.residual > 1e-3


def test_xor_teacher_counterexample_after_shrinking():
    res = search(M.matrix_form_xor, budget=SMALL, seed=2)
    assert res.verdict == "refuted" and res.counterexample.real
    assert res.counterexample.shrink["nonzero_entries_after"] <= res.counterexample.shrink["nonzero_entries_before"]
