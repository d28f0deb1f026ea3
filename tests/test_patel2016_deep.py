"""Deep DRMM theorems (formalisations P4-P6): faces, mutants, necessary assumptions, and the model itself."""

import dataclasses

import numpy as np
import pytest
import sympy as sp
from conftest import COVER, SMALL

from theorems.patel2016 import deep as T
from verify import MaxOver
from verify.backends import backend, to_highprec
from verify.engine.crosscheck import Evaluator
from verify.engine.evaluate import batch_evaluator, batch_sampler
from verify.engine.runner import run_theorem
from verify.models import drmm as M
from verify.registry import theorems_in
from verify.symbolic import check_derivation
from verify.values import Structure

#: the outcome budget: enough batches to cover the small scope; mutants and ablations read the same
#: batches (one store per theorem), and only need refuting, so their shrinking is short
OUTCOME = dataclasses.replace(COVER, shrink_examples=20, shrink_batches=20)

FAMILY = {t.id: t for t in theorems_in(T, "theorems.patel2016.deep")}


def _sizes(*fields_of):
    """The explicit sizes {field: value} of every architecture, as the derivations key them."""
    return {tuple(sorted(f.items())) for f in fields_of}


def _fields(arch, K=True, P=True):
    out = {"depth": len(arch)}
    for l, (k, p) in enumerate(arch, start=1):
        out |= ({f"K{l}": k} if K else {}) | ({f"P{l}": p} if P else {})
    return out


#: what each derivation proves, from the mathematics: the component, whether for all sizes, and else
#: exactly which explicit sizes (every other size left symbolic)
EXPECTED = {
    # P4: over symbolic n and D (the orthogonality premise is in the claim's Gram form)
    "patel2016.prior-bias-relu": {"value": "all", "argmax": "all"},
    # P5: one chain per depth: depth 1 for every K1, P1, D0, C; depths 2 and 3 at each pattern of unit
    # counts of the architectures (every P_l): the sums over units are exchanged by writing them out
    "patel2016.deep-maxsum-convnet": {"value": _sizes({"depth": 1}, *[_fields(a, P=False) for a in T.ARCHS[4:]])},
    # the bottom-up latents attain the forward value: each window-size pattern of depth 1 and 2, every K_l
    "patel2016.deep-maxsum-lower-bound": {"attained": _sizes(*[_fields(a, K=False) for a in T.ARCHS if len(a) <= 2])},
    # P6: depth 1 for every K1, P1; every deeper architecture but the last written out
    "patel2016.paths-sum": {"value": _sizes({"depth": 1}, *[_fields(a) for a in T.ARCHS[4:-1]])},
}


def test_the_family_is_complete():
    assert set(FAMILY) == set(EXPECTED) | {"patel2016.deep-maxsum-signed-class"}
    for tid in EXPECTED:
        assert len(FAMILY[tid].mutants) >= 3, tid
    assert max(M.configurations(a) for a in T.ARCHS) == 2048 <= M.MAX_CONFIGURATIONS
    assert {len(a) for a in T.ARCHS} == {1, 2, 3}


@pytest.mark.parametrize("tid", sorted(EXPECTED))
def test_theorem_comes_out_as_expected(tid, tmp_path):
    thm = FAMILY[tid]
    faces = ("symbolic", "numeric", "mutants") + (("ablate",) if thm.assumptions else ())
    report = run_theorem(thm, faces=faces, budget=OUTCOME, out_dir=tmp_path)
    assert report.ok, report.problems
    claims = {c.symbolic.component or "value": c for c in report.symbolic.claims}
    assert set(claims) == set(EXPECTED[tid])
    for component, scope in EXPECTED[tid].items():
        c = claims[component]
        assert c.verdict == "proved" and c.crosscheck.status == "agrees" and c.crosscheck.compared > 0, component
        if scope == "all":
            assert c.symbolic.scope.all_sizes
        else:
            assert not c.symbolic.scope.all_sizes and set(c.symbolic.scope.sizes) == scope
    n = report.numeric
    assert n.verdict == "confirmed"
    assert n.nontrivial >= thm.min_nontrivial  # confirmed on instances outside every trivial regime
    assert n.max_ratio < 0.1  # at least 10x inside the tolerance
    assert n.coverage["covered"] == n.coverage["structures"]  # the whole small scope got its batch
    if thm.scope:
        assert n.coverage["structures"] == len(thm.scope)
        depths = {len(r["structure"]["layers"]) for r in n.structures if r["nontrivial"] > 0}
        assert depths == {1, 2, 3}  # depth 3 is searched, and on non-trivial instances
    assert all(m.refuted for m in report.mutants)
    for m in report.mutants:  # a mutant's wrong claim is refuted exactly, and that claim is the mutant's property
        if m.symbolic is not None:
            assert m.refuted_symbolically, m.name
    if tid == "patel2016.prior-bias-relu":  # orthogonality is necessary: the witness's columns are not orthogonal
        (ab,) = report.ablations
        assert ab.assumption == "orthogonal_columns" and ab.verdict == "necessary"
        cx = ab.search.counterexample
        assert cx.real and cx.structure["n"] >= 2  # one column is always orthogonal to itself
        lam = np.asarray(cx.instance["Lambda"])
        assert abs(float(lam[:, 0] @ lam[:, 1])) > 0
        assert sum(np.asarray(v).size for v in cx.instance.values()) <= 16
    if tid == "patel2016.deep-maxsum-convnet":  # (H3) is necessary, with a small witness that really violates it
        (ab,) = report.ablations
        assert ab.assumption == "nonnegative_templates" and ab.verdict == "necessary"
        cx = ab.search.counterexample
        assert cx.real and cx.residual >= 0.5
        upper = [cx.instance["mu"]] + [v for k, v in cx.instance.items() if k.startswith("G") and k != "G1"]
        assert any((np.asarray(u) < 0).any() for u in upper)
        assert sum(np.asarray(v).size for v in cx.instance.values()) <= 6


def test_the_trivial_regime_takes_draws_and_is_what_it_says():
    """joint_map_zero holds exactly when every class's joint max is 0; then the forward pass is 0 too
    (under H3), so such instances test nothing: the verdict counts the others."""
    thm = FAMILY["patel2016.deep-maxsum-convnet"]
    (regime,) = thm.trivial
    s = Structure(T.with_widths({"layers": ((2, 1), (1, 2)), "D0": 2, "C": 2}))
    xs = batch_sampler(thm.sample)(s, 5, 256)
    hits = 0
    for i in range(256):
        x = {k: np.asarray(v)[i] for k, v in xs.items()}
        if not bool(thm.assumptions[0].holds(s, x)):
            continue
        brute = np.asarray(M.brute_force_scores(T._gammas(s, x), x["mu"], x["I"], s.layers))
        trivial = bool(regime.holds(s, x))
        assert trivial == bool((brute == 0).all())
        if trivial:
            hits += 1
            assert np.all(np.asarray(T._forward_scores(s, x)) == 0)
    assert 0 < hits < 256


def test_the_stated_non_theorem_is_refuted(tmp_path):
    report = run_theorem(FAMILY["patel2016.deep-maxsum-signed-class"], faces=("numeric",), budget=SMALL,
                         out_dir=tmp_path)
    assert report.ok, report.problems
    cx = report.numeric.counterexample
    assert report.numeric.verdict == "refuted" and cx.real
    assert cx.structure["C"] >= 2  # one class cannot disagree with itself


def test_the_push_max_chain_needs_h3():
    """With a signed Gamma_2 and template the same depth-2 chain fails (the weights of layer 1 are no
    longer >= 0) and the claim is refuted exactly."""
    signed = check_derivation(T._push_max_derivation(T._Net(((2, None), (1, None)), signed=True)))
    assert signed.verdict == "refuted" and signed.witness
    assert "nonnegative" in signed.gap


def test_a_claim_whose_inner_max_reads_the_outer_latents_is_evaluated():
    """The cross-check evaluates max_b max_a (a b[a] w) by enumeration: the inner max reads an entry
    the outer max optimises (as the deep claims do): 2 x 2 x 2 assignments, best 3 (a = 1, b[1] = 1)."""
    a, b, w = sp.Symbol("a", integer=True), sp.IndexedBase("b"), sp.IndexedBase("w")
    e = MaxOver(MaxOver(b[a] * w[a], (a, 0, 1)), (b, [0, 1]))
    ev = Evaluator({}, Structure({}), {"w": np.array([-2.0, 3.0])})
    assert ev(e, {}) == 3.0
    e_min = MaxOver(MaxOver(-b[a] * w[a], (a, 0, 1)), (b, [0, 1]))  # b = 0 everywhere gives 0
    assert ev(e_min, {}) == 2.0  # a = 0, b[0] = 1: -(-2)


def test_h3_allows_a_signed_first_dictionary_and_image():
    """Instances meeting (H3) whose Gamma_1 and I both have negative entries pass the claim."""
    thm = FAMILY["patel2016.deep-maxsum-convnet"]
    s = Structure(T.with_widths({"layers": ((2, 2), (1, 2)), "D0": 3, "C": 2}))
    out = batch_evaluator(thm.property, thm.sample, thm.assumptions, thm.tolerance)(s, 7, 256)
    xs = batch_sampler(thm.sample)(s, 7, 256)
    signed = (np.asarray(xs["G1"]) < 0).any(axis=(1, 2)) & (np.asarray(xs["I"]) < 0).any(axis=1)
    ok = out["holds"][:, 0] & signed
    assert ok.sum() >= 20
    assert (out["ratio"][ok] <= 1.0).all()


def test_depth_two_witness_with_signed_upper_dictionary():
    """mu >= 0 but Gamma_2 = -1: the forward pass gives 0, the joint max is 1 (a1 = a2 = 1)."""
    layers = ((1, 1), (1, 1))
    G, mu, I = [np.array([[1.0]]), np.array([[-1.0]])], np.array([[1.0]]), np.array([-1.0])
    assert float(M.brute_force_scores(G, mu, I, layers)[0]) == 1.0
    assert float((mu @ M.forward(G, I, layers))[0]) == 0.0
    s = Structure(T.with_widths({"layers": layers, "D0": 1, "C": 1}))
    x = {"G1": G[0], "G2": G[1], "mu": mu, "I": I}
    assert not bool(T.NONNEG_TEMPLATES.holds(s, x))
    assert float(T.deep_maxsum.property(s, x)["value"].value[0]) == 1.0
    lb = T.deep_lower_bound.property(s, x)  # ...and the lower bound still holds, attained by the bottom-up latents
    assert lb["bound"].relation == "<=" and float(lb["bound"].lhs[0]) == 0.0 and float(lb["bound"].rhs[0]) == 1.0
    assert float(lb["bound"].value[0]) == 0.0 and float(lb["attained"].value[0]) == 0.0


def test_joint_map_oracle_renders_its_own_score():
    rng = np.random.default_rng(3)
    layers, D0 = ((2, 2), (1, 2)), 3
    G = [rng.normal(size=M.gamma_shape(layers, D0, l)) for l in (1, 2)]
    mu, I = rng.normal(size=(3, 1)), rng.normal(size=D0)
    c, switches, shifts, score = M.joint_map(G, mu, I, layers)
    assert np.isclose(float(M.render(G, switches, shifts, mu[c], layers) @ I), score, rtol=1e-12, atol=1e-12)
    assert np.isclose(score, float(np.max(np.asarray(M.brute_force_scores(G, mu, I, layers)))))
    with pytest.raises(ValueError):
        M.brute_force_scores([np.zeros((1, 16))], np.zeros((1, 4)), np.zeros(1), ((4, 4),))


def test_deep_claim_evaluates_at_50_digits():
    thm = FAMILY["patel2016.deep-maxsum-convnet"]
    s = Structure(T.with_widths({"layers": ((2, 1), (1, 2)), "D0": 2, "C": 2}))
    xs = batch_sampler(thm.sample)(s, 11, 8)
    for i in range(8):
        x = {k: np.asarray(v)[i] for k, v in xs.items()}
        if bool(np.asarray(thm.assumptions[0].holds(s, x))):
            with backend("highprec"):
                out = thm.property(s, to_highprec(x))
            assert all(abs(v) < 1e-40 for v in np.asarray(out["value"].value).ravel())
            return
    pytest.fail("no instance met (H3)")


def test_class_decision_differs_on_signed_instances():
    from verify.engine.rates import failure_rate

    rates = [failure_rate(T.signed_class, s, instances=512, batch=512, seed=0) for s in T.signed_class.rates_on[:2]]
    print("class disagreement on signed instances:", [(r["structure"]["layers"], r["rate"]) for r in rates])
    assert all(0.05 < r["rate"] < 0.95 for r in rates)
