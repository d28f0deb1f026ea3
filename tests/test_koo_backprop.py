"""Back-propagation lemmas of the Koo lecture (theorems/koo/backprop.py, B1-B4).

What the mathematics says, pinned: which claims are proved and over which sizes (symbolic widths for the
saliency identities, symbolic K for max-pooling, explicit sizes where the derivative is taken of an explicit
sum), that B4's chain does not carry over to a network with biases, that each claim is the statement its
property tests (cross-check), and the numeric outcome at the COVER budget (every structure of the small
scope searched, enough instances outside the trivial regimes, every mutant refuted, every assumption needed).
"""

from __future__ import annotations

import itertools

import jax
import jax.numpy as jnp
import numpy as np
import pytest
import sympy as sp
from conftest import COVER

from theorems.koo import backprop as B
from verify.backends import FLOAT64_ONLY, backend, to_highprec
from verify.engine.crosscheck import crosscheck
from verify.engine.runner import run_theorem
from verify.engine.search import Budget, search
from verify import Derivation
from verify.symbolic import Scope, check_derivation, size_symbols
from verify.values import Structure


def _sizes(res):
    return sorted(tuple(sorted(dict(s).items())) for s in res.scope.sizes)


def _grid(**values):
    return sorted(tuple(sorted(zip(values, combo))) for combo in itertools.product(*values.values()))


def _members(d):
    return list(getattr(d, "members", [d]))


# ------------------------------------------------------------------ symbolic face: verdicts and scopes


def test_one_layer_block_formulas_proved_at_every_size_up_to_two():
    for d in B.block_layer_one.derivations:
        res = check_derivation(d)
        assert res.verdict == "proved", res.gap
        assert _sizes(res) == _grid(B=[1, 2], n_in=[1, 2], n_out=[1, 2]), d.component


def test_quadratic_form_proved_entry_by_entry_at_n_up_to_four():
    for d in B.quadratic_form.derivations:
        res = check_derivation(d)
        assert res.verdict == "proved" and _sizes(res) == _grid(n=[1, 2, 3, 4]), (d.component, res.gap)


def test_max_routing_two_arguments_for_all_x_y_and_pooling_for_every_k():
    right, left, pool_right, pool_left = B.max_routing.derivations
    for d in (right, left):
        res = check_derivation(d)
        assert res.verdict == "proved" and res.scope.all_sizes, res.gap
        assert res.steps[0].kind == "cases" and res.steps[0].cases > 1  # every weak ordering, ties included
        cc = crosscheck(B.max_routing, d, res.scope, structures=[{"K": 1, "P": 2}])
        assert cc.status == "agrees" and cc.compared > 0, cc.detail  # the claim is the property's component
    for d in (pool_right, pool_left):
        res = check_derivation(d)
        assert res.verdict == "proved" and _sizes(res) == _grid(P=[2, 3]), res.gap
        for m in _members(d):  # one claim per window j = 0 .. K - 1, K symbolic
            j, lo, hi = m.entries
            assert lo == 0 and size_symbols(m.claim, m.entries) == {B._K}


def test_saliency_of_a_bias_free_network_proved_for_every_width_at_depths_one_to_three():
    res = check_derivation(B.saliency_homogeneous.derivation)
    assert res.verdict == "proved" and _sizes(res) == _grid(depth=[1, 2, 3]), res.gap
    for m in _members(B.saliency_homogeneous.derivation):  # the widths n_0 .. n_L stay symbolic
        assert {s.name for s in size_symbols(m.claim)} == {f"n{l}" for l in range(m.size["depth"] + 1)}
        assert len(m.chain) == m.size["depth"]  # one gated pre-activation per layer


def test_the_same_chain_does_not_prove_the_claim_with_biases():
    """The step of each layer is 'W h is the pre-activation': false with a bias, so the chain stops and
    the claim is refuted at an exact rational point."""
    res = check_derivation(B.saliency_with_bias.derivation)
    assert res.verdict == "refuted" and res.witness
    assert not res.chains[0].reached and "the claim's right side" in res.chains[0].gap
    homogeneous_chain = check_derivation(B._homogeneous(1)).chains[0]
    assert homogeneous_chain.reached


def test_local_linear_identity_proved_for_every_width_at_depths_one_to_three():
    res = check_derivation(B.saliency_local_linear.derivation)
    assert res.verdict == "proved" and _sizes(res) == _grid(depth=[1, 2, 3]), res.gap
    for m in _members(B.saliency_local_linear.derivation):
        assert {s.name for s in size_symbols(m.claim)} == {f"n{l}" for l in range(m.size["depth"] + 1)}
        # the claim's right side keeps the correction terms ([y' > 0] - [y > 0]) y', zero on the region
        gates = [h for h in m.claim.rhs.atoms(sp.Heaviside)]
        assert len(gates) >= 2 * m.size["depth"]


def test_wrong_symbolic_claims_of_mutants_are_refuted():
    for thm, name in ((B.quadratic_form, "sympy_matrixsymbol_dx"), (B.quadratic_form, "sympy_matrixsymbol_da"),
                      (B.saliency_homogeneous, "degree_two")):
        res = check_derivation(thm.mutant(name).derivation)
        assert res.verdict == "refuted" and res.witness, name


# ------------------------------------------------------------------ the claims are what the properties test


def test_saliency_claims_agree_with_their_properties_on_instances():
    """A full cross-check of the depth-3 claims costs SymPy about a minute; depth 1 and 2 here, the rest in
    ``verify check``."""
    for thm in (B.saliency_homogeneous, B.saliency_local_linear):
        for m in _members(thm.derivation)[:2]:
            s = [x for x in B.SALIENCY_SCOPE if x["depth"] == m.size["depth"] and min(x["widths"]) == 2][0]
            cc = crosscheck(thm, m, Scope.explicit([m.size]), structures=[s])
            assert cc.status == "agrees" and cc.compared > 0, (thm.id, m.size, cc.detail)


def test_quadratic_claim_written_wrongly_disagrees_with_the_property():
    """The cross-check can fail: x^T (A + A^T) written as 2 A x is not what the general property computes."""
    wrong = Derivation.for_sizes(lambda n: B._quad_dx(n, rhs=lambda k: 2 * sum(B._A[k, j] * B._x[j] for j in range(n))),
                                 n=[3])
    cc = crosscheck(B.quadratic_form, wrong, Scope.explicit([{"n": 3}]), structures=[{"n": 3}])
    assert cc.status == "disagrees"


# ------------------------------------------------------------------ conventions of JAX and SymPy


def test_tie_and_relu_conventions_of_jax_and_sympy():
    assert jax.grad(jnp.maximum, argnums=(0, 1))(1.0, 1.0) == (0.5, 0.5)
    np.testing.assert_allclose(jax.grad(jnp.max)(jnp.array([1.0, 1.0, 1.0, 0.0])), [1 / 3, 1 / 3, 1 / 3, 0])
    pool = jax.grad(lambda v: B._reduce_window_pool(v, jnp.ones(2), 3))(jnp.array([0.0, 2.0, 2.0, 1.0, 1.0, 1.0]))
    np.testing.assert_array_equal(pool, [0, 1, 0, 1, 0, 0])  # reduce_window: first maximiser
    assert jax.grad(jax.nn.relu)(0.0) == 0.0
    assert jax.grad(lambda t: jnp.maximum(t, 0.0))(0.0) == 0.5
    assert sp.Heaviside(0) == sp.Rational(1, 2) and sp.Heaviside(0, 0) == 0
    a, b, c = sp.symbols("a b c", real=True)
    assert sp.diff(sp.Max(a, b, c), a).subs({a: 1, b: 1, c: 1}) == sp.Rational(1, 2)  # partials sum to 3/2
    # SymPy's MatrixSymbol derivative of an element access is silently 0 (the mutants sympy_matrixsymbol_* state it)
    assert B.SYMPY_ELEMENT_DX == sp.zeros(3, 1) and B.SYMPY_ELEMENT_DA == sp.zeros(3, 3)


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


# ------------------------------------------------------------------ numeric outcomes at the COVER budget


@pytest.mark.parametrize("thm", [B.block_layer_one, B.block_layer], ids=lambda t: t.id)
def test_block_layer_confirmed_and_mutants_refuted_on_the_first_structure(thm):
    """The first structure of the small scope (a 2 x 2 tanh layer, batch 2) tells every mutant apart; the
    whole scope (27 and 28 structures, jax.grad of deep networks) is searched by ``verify run``."""
    assert thm.scope[0] in ({"widths": (2, 2), "B": 2, "act": "tanh"}, {"n_in": 2, "n_out": 2, "B": 2})
    rep = run_theorem(thm, faces=("numeric", "mutants"), budget=Budget(examples=2, batch=64), seed=1)
    assert rep.ok, rep.problems
    assert rep.numeric.verdict == "confirmed" and rep.numeric.satisfied == 2 * 64
    assert all(m.refuted and m.numeric.counterexample.real for m in rep.mutants)


#: 13 structures, each compiled with jax.grad and three mutants: 20 batches cover them all (4 random ones
#: beyond) and keep >= min_nontrivial instances outside the trivial regimes; COVER would add random
#: structures (compilations) without covering more of the small scope
SALIENCY_BUDGET = Budget(examples=20, batch=64)


@pytest.mark.parametrize("thm", [B.quadratic_form, B.quadratic_form_symmetric, B.max_routing,
                                 B.saliency_homogeneous, B.saliency_local_linear], ids=lambda t: t.id)
def test_claims_confirmed_over_the_small_scope_mutants_refuted_assumptions_necessary(thm):
    budget = SALIENCY_BUDGET if thm.scope else COVER
    rep = run_theorem(thm, faces=("numeric", "mutants", "ablate"), budget=budget, seed=1)
    assert rep.ok, rep.problems
    num = rep.numeric
    assert num.verdict == "confirmed"
    assert num.coverage["covered"] == num.coverage["structures"] > 0  # every structure of the small scope
    if thm.trivial:
        assert num.nontrivial >= thm.min_nontrivial, dict(num.per_regime)
    assert all(m.refuted for m in rep.mutants), [m.name for m in rep.mutants if not m.refuted]
    assert all(a.verdict == "necessary" for a in rep.ablations), [(a.assumption, a.verdict) for a in rep.ablations]


def test_symmetric_quadratic_form_is_tested_and_proved_at_n_two():
    """Issue 12: random structures never drew n = 2 for this claim; the small scope does, and the derivation's
    n = 2 member is cross-checked there (the engine keeps in the scope only sizes it compared)."""
    rep = run_theorem(B.quadratic_form_symmetric, faces=("symbolic", "numeric"), budget=COVER, seed=1)
    assert rep.ok, rep.problems
    drawn = {r["structure"]["n"]: r for r in rep.numeric.structures}
    assert drawn[2]["meeting_assumptions"] > 0 and drawn[2]["nontrivial"] > 0
    for c in rep.symbolic.claims:
        assert c.symbolic.verdict == "proved" and c.crosscheck.status == "agrees"
        assert _sizes(c.symbolic) == _grid(n=[1, 2, 3, 4])  # every size compared, n = 2 included


def test_saliency_with_bias_is_refuted():
    rep = run_theorem(B.saliency_with_bias, faces=("numeric",), budget=Budget(examples=4, batch=64), seed=1)
    assert rep.ok and rep.numeric.verdict == "refuted" and rep.numeric.counterexample.real


def test_saliency_sampler_reaches_live_mixed_networks():
    """Random ReLU weights leave the top layer dead at I in most draws; the sampler's 'alive' half keeps
    enough instances outside both trivial regimes at every depth."""
    res = search(B.saliency_homogeneous, budget=Budget(examples=13, batch=64), seed=3)
    by_depth = {}
    for r in res.structures:
        by_depth[r["structure"]["depth"]] = by_depth.get(r["structure"]["depth"], 0) + r["nontrivial"]
    assert set(by_depth) == {1, 2, 3} and all(v > 0 for v in by_depth.values()), by_depth


@pytest.mark.parametrize("y", [6.0, 8.0, 10.0, 12.0, 14.0])
def test_block_layer_holds_where_tanh_saturates(y):
    """Found by `verify run` once programs were compiled without LLVM's optimisation (so without contracting
    1 - V*V into one exact multiply-add): where tanh saturates, 1 - V^2 is 2e-5 to 3e-12 and its float64
    rounding ~1e-16, so a tolerance scale of |phi'| failed the true claim by up to 206x. The scale is now the
    size of phi''s terms (dphi_size, 1 + V^2). The claim holds at every such instance, by the engine's own
    evaluation."""
    from verify.engine.evaluate import single_evaluator

    thm = B.block_layer
    s = Structure({"B": 2, "act": "tanh", "widths": (2, 2)})
    x = {"X": np.array([[y, 0.3], [-0.7, y / 2]]), "W0": np.eye(2), "b0": np.zeros(2),
         "C": np.array([[0.9, -0.4], [0.2, 1.1]]), "Q": np.array([[0.3, 0.1], [-0.2, 0.5]])}
    out = single_evaluator(thm.property, tuple(thm.assumptions), thm.tolerance)(s, x)
    assert bool(out["finite"]) and float(out["ratio"]) <= 1.0
