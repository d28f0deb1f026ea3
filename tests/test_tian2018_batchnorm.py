"""Tian (2018) Theorem 5: Batch Norm backward is a projection (theorems/tian2018/batchnorm.py)."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest
import sympy as sp
from conftest import COVER

from theorems.tian2018 import batchnorm as B
from verify import Claim, Derivation
from verify.backends import backend
from verify.engine.crosscheck import crosscheck
from verify.engine.runner import run_theorem
from verify.engine.search import Budget, search
from verify.symbolic import Scope, check_derivation
from verify.values import Structure, as_residuals

SMALL = Budget(examples=3, batch=256)
THEOREMS = [B.bn_projection, B.bn_projection_weighted, B.bn_energy]


def _family(thm, component):
    (fam,) = [d for d in thm.derivations if d.component == component]
    return fam


def _ratios(prop, tol, s, x):
    """Worst |r| / (atol + rtol * scale) per component, float64 (jax backend)."""
    with backend("jax"):
        out = as_residuals(prop(s, {k: jnp.asarray(v) for k, v in x.items()}))
    return {k: float(np.max(np.abs(np.asarray(r.value)) / np.maximum(tol.bound(np.abs(np.asarray(r.scale))), 1e-300)))
            for k, r in out.items()}


def ioffe_szegedy_backward(f, dy, gamma, eps=0.0):
    """The classic three-term backward of Ioffe & Szegedy (2015), NumPy, no autodiff."""
    m = f.shape[0]
    mu = f.mean()
    var = ((f - mu) ** 2).mean()
    xhat = (f - mu) / np.sqrt(var + eps)
    dxhat = dy * gamma
    dvar = np.sum(dxhat * (f - mu)) * -0.5 * (var + eps) ** -1.5
    dmu = np.sum(-dxhat / np.sqrt(var + eps)) + dvar * np.mean(-2.0 * (f - mu))
    return dxhat / np.sqrt(var + eps) + dvar * 2.0 * (f - mu) / m + dmu / m, xhat


@pytest.mark.parametrize("thm", THEOREMS, ids=lambda t: t.id)
def test_numeric_confirmed_over_the_small_scope_and_every_mutant_refuted(thm):
    rep = run_theorem(thm, faces=("numeric", "mutants"), budget=COVER, seed=1)
    assert rep.ok, rep.problems
    assert rep.numeric.verdict == "confirmed" and rep.numeric.satisfied > 0
    assert rep.numeric.coverage["covered"] == rep.numeric.coverage["structures"] > 0  # N = 2..6, each drawn
    assert rep.numeric.max_ratio < 1.0
    assert all(m.refuted for m in rep.mutants)
    # the batch mutants also state their wrong gradient claim at N = 3: refuted at an exact rational
    # point, and that claim agrees with the mutant's property on drawn instances
    for spec, m in zip(thm.mutants, rep.mutants):
        assert (spec.derivation is not None) == (thm is B.bn_projection)
        if spec.derivation is not None:
            assert m.refuted_symbolically, (m.name, m.symbolic.verdict, m.crosscheck.detail)


def test_which_components_carry_a_derivation():
    """The batch form: every component but the autodiff one and the sigma = 0 guard; the weighted
    form: the four whose SymPy check is quick; the energy consequence: none (tested only)."""
    assert {d.component for d in B.bn_projection.derivations} == set(B.BATCH_PROOFS) == {
        "three_term", "centred", "orthogonal_to_f", "idempotent", "kills_1", "kills_f", "rank_n_minus_2",
        "self_adjoint"}
    assert {d.component for d in B.bn_projection_weighted.derivations} == set(B.WEIGHTED_PROOFS)
    assert B.bn_energy.derivation is None


def _sizes(scope):
    return sorted(dict(s)["N"] for s in scope.sizes)


def test_gradient_formula_proved_at_the_explicit_sizes_and_agrees_with_the_property():
    fam = _family(B.bn_projection, "three_term")
    res = check_derivation(fam)
    assert res.verdict == "proved", res.gap
    assert not res.scope.all_sizes and _sizes(res.scope) == [2, 3, 4]  # written out at N = 2, 3, 4 only
    cc = crosscheck(B.bn_projection, fam, res.scope)
    assert cc.status == "agrees" and cc.compared > 0, cc.detail


def test_weighted_operator_kills_1_and_has_trace_n_minus_2_at_n_2_and_3():
    for comp in ("kills_1", "rank_n_minus_2"):
        res = check_derivation(_family(B.bn_projection_weighted, comp))
        assert res.verdict == "proved", (comp, res.gap)
        assert _sizes(res.scope) == [2, 3]


def test_a_transposed_operator_in_the_claim_disagrees_with_the_property():
    """Q^T in place of Q (the mutant lambda_transposed, written as a claim): the crosscheck fails it."""
    b = B.exact_bn(3, weighted=True)
    wrong = Derivation(component="three_term", size={"N": 3},
                       claim=Claim(b.gradient, "==", B._c1 / b.sigma * b.P.T * b.g))
    cc = crosscheck(B.bn_projection_weighted, wrong, Scope.explicit([{"N": 3}]))
    assert cc.status == "disagrees", cc.detail


def test_true_links_do_not_prove_a_wrong_claim():
    """The mutant drop_fhat_term as a claim (I - 1 1^T / N in place of P_perp) with the theorem's
    true chain-rule link: the chain ends at J^T g, which is not the claim's right side."""
    b = B.exact_bn(2, weighted=False)
    d = B.gradient_derivation(False, 2)
    wrong = Claim(b.gradient, "==", B._c1 / b.sigma * (sp.eye(2) - b.one * b.one.T / 2) * b.g)
    res = check_derivation(Derivation(claim=wrong, chain=d.chain[:1], component=d.component, size={"N": 2}))
    assert res.verdict in ("refuted", "unconfirmed") and "chain ends at" in res.gap, (res.verdict, res.gap)


def test_eps_zero_necessary_with_witness_and_residual_formula():
    res = search(B.bn_projection, drop="eps_zero", budget=SMALL, seed=3)
    assert res.verdict == "refuted" and res.counterexample.real
    # observed residual with eps > 0: f^T dL/df = c1 * eps / (sigma^2 + eps) * xhat_eps^T g
    rng = np.random.default_rng(0)
    for _ in range(20):
        N = int(rng.integers(2, 7))
        f, g = rng.normal(size=N) * 3 + 1, rng.normal(size=N)
        c1, eps = rng.normal(), 10 ** rng.uniform(-4, 0)
        grad, xhat = ioffe_szegedy_backward(f, g, c1, eps)
        var = f.var()
        assert np.isclose(f @ grad, c1 * eps / (var + eps) * (xhat @ g), rtol=1e-9, atol=1e-12)
        assert abs(grad.sum()) < 1e-12 * np.abs(grad).sum() + 1e-15  # still centred


def test_three_term_numpy_matches_autodiff_and_projection():
    rng = np.random.default_rng(1)
    for _ in range(30):
        N = int(rng.integers(2, 9))
        f = rng.normal(size=N) * 10 ** rng.uniform(-3, 0) + rng.normal() * 10 ** rng.uniform(0, 2)
        g, c1, c0 = rng.normal(size=N), rng.normal(), rng.normal()
        hand, _ = ioffe_szegedy_backward(f, g, c1)
        auto = np.asarray(B.autodiff_backward(jnp.asarray(f), None, jnp.asarray(g), c1, c0, 0.0, 1.0, weighted=False))
        sigma = f.std()
        fhat = (f - f.mean()) / sigma
        P = np.eye(N) - (np.ones((N, N)) + np.outer(fhat, fhat)) / N
        proj = c1 / sigma * P @ g
        kappa = 1 + np.abs(f).max() / sigma
        scale = kappa * abs(c1) / sigma * (np.abs(g).sum() + 1)
        assert np.max(np.abs(hand - auto)) < 1e-11 * scale
        assert np.max(np.abs(hand - proj)) < 1e-11 * scale


def _tiny_variance_instance(N=5, rel=1e-6, seed=2):
    rng = np.random.default_rng(seed)
    q = 10.0 ** (-8 * rng.uniform(size=N))
    return {"f": 37.0 + rel * rng.normal(size=N), "g": rng.normal(size=N), "c1": 1.7, "c0": -0.3,
            "eps": 0.0, "biased": 1.0, "q": q / q.sum()}


@pytest.mark.parametrize("thm", [B.bn_projection, B.bn_projection_weighted], ids=lambda t: t.id)
def test_tolerance_separates_true_from_mutants_at_tiny_variance(thm):
    """Variance 1e-12 relative to the mean (kappa ~ 4e7) and p over 8 decades: the claim stays inside
    the tolerance with a margin, and every mutant is outside it."""
    x = _tiny_variance_instance()
    if thm is B.bn_projection:
        x.pop("q")
    x = {k: np.asarray(v, dtype=float) for k, v in x.items()}
    s = Structure({"N": 5})
    true = max(_ratios(thm.property, thm.tolerance, s, x).values())
    assert true < 0.05, true
    for m in thm.mutants:
        worst = max(_ratios(m.property, thm.tolerance, s, x).values())
        assert worst > 10, (m.name, worst)


def test_constant_f_is_excluded_and_never_nan():
    s = Structure({"N": 4})
    x = {"f": np.full(4, 0.0), "g": np.ones(4), "c1": np.asarray(1.0), "c0": np.asarray(0.0),
         "eps": np.asarray(0.0), "biased": np.asarray(1.0)}
    nc = B.bn_projection.assumption("nonconstant_f")
    with backend("jax"):
        assert not bool(nc.holds(s, {k: jnp.asarray(v) for k, v in x.items()}))
    r = _ratios(B.bn_projection.property, B.bn_projection.tolerance, s, x)
    assert all(np.isfinite(v) for v in r.values() if v != np.inf) and r["defined"] > 1
    # ablation of nonconstant_f finds a real (finite) failure, not an engine error
    res = search(B.bn_projection, drop="nonconstant_f", budget=SMALL, seed=5)
    assert res.verdict == "refuted"


def test_energy_step_identity_numpy():
    """||w - eta grad||^2 = ||w||^2 + eta^2 ||grad||^2 for linear -> BN, grad by jax.grad."""
    rng = np.random.default_rng(4)
    N = 5
    x = {"X": rng.normal(size=(N, B.D_IN)), "W": rng.normal(size=(B.K_OUT, B.D_IN)), "q": np.ones(N),
         "c1": rng.normal(size=B.K_OUT), "c0": rng.normal(size=B.K_OUT), "a": rng.normal(size=(N, B.K_OUT)),
         "b": rng.normal(size=(N, B.K_OUT)), "eps": 0.0, "biased": 1.0, "eta": 0.3}
    xj = {k: jnp.asarray(v, dtype=jnp.float64) for k, v in x.items()}
    with backend("jax"):
        G = np.asarray(jax.grad(lambda w: B._energy_loss(w, xj))(xj["W"]))
    W = x["W"]
    np.testing.assert_allclose(np.sum(W * G, axis=1), 0.0, atol=1e-12)
    lhs = np.sum((W - 0.3 * G) ** 2, axis=1)
    np.testing.assert_allclose(lhs, np.sum(W * W, axis=1) + 0.09 * np.sum(G * G, axis=1), rtol=1e-12)
