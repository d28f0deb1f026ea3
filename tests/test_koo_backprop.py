"""Back-propagation lemmas of the Koo lecture (theorems/koo/backprop.py, B1-B4)."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest
import sympy as sp

from theorems.koo import backprop as B
from verify import Agrees, Derivation
from verify.backends import FLOAT64_ONLY, backend, to_highprec
from verify.engine.runner import run_theorem
from verify.engine.search import Budget, search
from verify.symbolic import check_derivation
from verify.values import Structure

TINY = Budget(examples=3, batch=128)


@pytest.mark.parametrize("thm, verdict", [
    (B.block_layer, "proved-to-2"),
    (B.quadratic_form, "proved-to-3"),
    (B.quadratic_form_symmetric, "proved-to-3"),
    (B.max_routing, "proved"),
    (B.saliency_homogeneous, "proved"),
    (B.saliency_local_linear, "proved"),
], ids=lambda v: getattr(v, "id", v))
def test_derivations(thm, verdict):
    res = check_derivation(thm.derivation)
    assert res.verdict == verdict, [(s.why, s.status, s.detail) for s in res.steps if s.status not in ("confirmed", "cross-checked")]


def test_agrees_flags_sympy_matrixsymbol_derivatives():
    x, A = sp.MatrixSymbol("x", 3, 1), sp.MatrixSymbol("A", 3, 3)
    # SymPy 1.14: the element access loses the dependence (returns 0); the 1x1 matrix form is right
    wrong = sp.diff((x.T * A * x)[0, 0], x)
    right = sp.diff(x.T * A * x, x)
    trace = sp.diff(sp.Trace(A) + sp.Trace(A ** 2), A)  # true value: I + 2 A^T
    assert check_derivation(Derivation([Agrees(wrong, [x, A], B._jax_grad_x, why="element")])).verdict == "refuted"
    ok = check_derivation(Derivation([Agrees(right, [x, A], B._jax_grad_x, why="matrix")]))
    assert ok.verdict == "unconfirmed" and ok.steps[0].status == "cross-checked"  # agreement alone proves nothing
    tr = Derivation([Agrees(trace, [A], lambda a: np.asarray(jax.grad(lambda m: jnp.trace(m) + jnp.trace(m @ m))(jnp.asarray(a))),
                            why="trace")])
    res = check_derivation(tr)
    assert res.verdict == "refuted" and "sympy" in res.steps[0].witness
    for name in ("sympy_matrixsymbol_dx", "sympy_matrixsymbol_da"):
        assert check_derivation(B.quadratic_form.mutant(name).derivation).verdict == "refuted"


def test_tie_and_relu_conventions_of_jax():
    assert jax.grad(jnp.maximum, argnums=(0, 1))(1.0, 1.0) == (0.5, 0.5)
    np.testing.assert_allclose(jax.grad(jnp.max)(jnp.array([1.0, 1.0, 1.0, 0.0])), [1 / 3, 1 / 3, 1 / 3, 0])
    pool = jax.grad(lambda v: B._reduce_window_pool(v, jnp.ones(2), 3))(jnp.array([0.0, 2.0, 2.0, 1.0, 1.0, 1.0]))
    np.testing.assert_array_equal(pool, [0, 1, 0, 1, 0, 0])  # reduce_window: first maximiser
    assert jax.grad(jax.nn.relu)(0.0) == 0.0
    assert jax.grad(lambda t: jnp.maximum(t, 0.0))(0.0) == 0.5  # NB: verify's xp.relu is jnp.maximum
    assert sp.Heaviside(0) == sp.Rational(1, 2)
    a, b, c = sp.symbols("a b c", real=True)
    assert sp.diff(sp.Max(a, b, c), a).subs({a: 1, b: 1, c: 1}) == sp.Rational(1, 2)  # partials sum to 3/2


def test_block_backward_matches_autodiff_and_highprec_forward_mode():
    s = Structure({"widths": (3, 4, 2, 2), "B": 3, "act": "tanh"})
    rng = np.random.default_rng(0)
    x = {"X": rng.normal(size=(3, 3)), "C": rng.normal(size=(2, 3)), "Q": rng.normal(size=(2, 3))}
    for l, (a, b) in enumerate(zip(s.widths[:-1], s.widths[1:])):
        x[f"W{l}"], x[f"b{l}"] = rng.normal(size=(b, a)), rng.normal(size=b)
    with backend("jax"):
        out = B.make_block_claim()(s, {k: jnp.asarray(v) for k, v in x.items()})
    assert {k for k in out if k.startswith("autodiff_")} == {f"autodiff_{n}" for n in B._params(s)}
    for r in out.values():
        assert np.all(np.abs(np.asarray(r.value)) <= 1e-12 * (1 + np.asarray(r.scale)))
    with backend("highprec"):
        hp = B.make_block_claim()(s, to_highprec(x))
        bad = B.make_block_claim(wt=False)(s, to_highprec(x))
    assert all(hp[k] is FLOAT64_ONLY for k in hp if k.startswith("autodiff"))  # claims about jax.grad itself
    assert max(float(np.max(np.abs(r.value))) for r in hp.values() if r is not FLOAT64_ONLY) < 1e-40
    assert float(np.max(np.abs(bad["forward_mode_X"].value))) > 1e-3


def test_block_layer_confirmed_and_mutants_refuted():
    res = search(B.block_layer, budget=Budget(examples=1, batch=64), seed=1)
    assert res.verdict == "confirmed" and res.satisfied == 64
    for name in ("w_not_transposed", "db_averaged"):
        m = search(B.block_layer, prop=B.block_layer.mutant(name).property, budget=Budget(examples=4, batch=64), seed=2)
        assert m.verdict == "refuted" and m.counterexample.real, name


@pytest.mark.parametrize("thm", [B.quadratic_form, B.quadratic_form_symmetric, B.max_routing,
                                 B.saliency_homogeneous, B.saliency_local_linear], ids=lambda t: t.id)
def test_claims_confirmed_mutants_refuted_assumptions_necessary(thm):
    rep = run_theorem(thm, budget=TINY, seed=1)
    assert rep.ok, rep.problems
    assert rep.numeric.verdict == "confirmed" and rep.numeric.satisfied > 0
    assert all(a.verdict == "necessary" for a in rep.ablations), [(a.assumption, a.verdict) for a in rep.ablations]


def test_saliency_with_bias_is_refuted():
    rep = run_theorem(B.saliency_with_bias, faces=("numeric",), budget=TINY, seed=1)
    assert rep.ok and rep.numeric.verdict == "refuted" and rep.numeric.counterexample.real
