"""Tian (2018) reformulation, T1-T4 (theorems/tian2018/reformulation.py) on the exact finite
teacher/student model (verify/models/teacher.py), and the two lemmas its symbolic face proves.

Kept small: most checks evaluate properties eagerly on a handful of sampled instances of one
fixed structure (no per-structure compile); two searches use Budget(examples=10, batch=64).
What the mathematics says is pinned: T1-T4 have no derivation (tested only); the conditioning
lemma is proved for every size; the grouping lemma is proved exactly at the sizes its chains are
written at; the teacher theorems declare the regimes where they hold trivially.
"""

from __future__ import annotations

import functools
import jax.numpy as jnp
import mpmath
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from theorems.tian2018 import reformulation as M
from verify.backends import backend
from verify.engine.evaluate import batch_sampler
from verify.engine.search import Budget, search
from verify.models import teacher as TT
from verify.symbolic import Claim, Derivation, check_derivation
from verify.values import Structure, as_residuals

SMALL = Budget(examples=10, batch=64)


@functools.lru_cache(maxsize=None)
def _instances(s, k=12, seed=7):
    """k instances of structure s (one compiled sampler per structure; cached: do not mutate)."""
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
    with pytest.raises(ValueError):
        TT.tables((((0,), ()), ((1,), ()), ((0, 1), (0, 1, 1))), "lossless")  # a child listed twice


def test_dags_have_regions_with_two_parents():
    for name in TT.DAGS:
        T = TT.tables(TT.DAGS[name], "lossless")
        assert T.parents[T.top] == () and all(T.parents[r] for r in range(T.top))
        assert max(len(pa) for pa in T.parents) == 2, name
    T = TT.tables(TT.DAGS["dag8"], "lossless")
    assert T.parents[5] == (7, 8) and not T.is_leaf(5)  # a middle region with two parents


@pytest.mark.parametrize("tree", ["d5-overlap", "d6-uneven", "d8-pairs", "dag6", "dag8"])
def test_drop_and_count_leaves_are_lossy_and_keep_the_label(tree):
    for teacher in ("drop_leaves", "count_leaves"):
        T = TT.tables(TT.LAYOUTS[tree], teacher)
        lossy = [r for r in range(T.top) if T.is_leaf(r) and T.mz[r] < T.mc[r]]
        assert lossy, (tree, teacher)
        for r in range(len(T.regions)):  # every region above the leaves is the tuple of its children
            if not T.is_leaf(r):
                assert len(set(zip(T.zid[r], *[T.zid[b] for b in T.children(r)]))) == T.mz[r]
        if tree != "d5-overlap" or teacher == "drop_leaves":  # overlapping count leaves lose shared pixels
            assert len(set(zip(T.zid[T.top], T.y))) == T.mz[T.top], (tree, teacher)  # y is a function of z_top
    T = TT.tables(TT.LAYOUTS[tree], "drop_leaves")
    assert T.dropped and all(len(TT.LAYOUTS[tree][r][0]) > 1 for r in range(T.top) if T.is_leaf(r) and T.mz[r] < T.mc[r])


@pytest.mark.parametrize("teacher", ["drop_leaves", "count_leaves", "xor_leaves", "lossless"])
def test_measurable_projector(teacher):
    """(P w) . x is a function of the leaf's variable, and P is the largest such projector:
    w - P w moves some event's values apart (unless every w already qualifies)."""
    T = TT.tables(TT.LAYOUTS["d6-uneven"], teacher)
    rng = np.random.default_rng(0)
    for r in range(T.top):
        if not T.is_leaf(r):
            continue
        P, Xr = T.measurable[r], T.X[:, list(T.regions[r][0])]
        np.testing.assert_allclose(P @ P, P, atol=1e-15)
        w = rng.normal(size=Xr.shape[1])
        v = Xr @ (P @ w)
        for a in range(T.mz[r]):
            assert np.ptp(v[T.zid[r] == a]) == 0.0  # exactly: the same float on every content
        spread = max(np.ptp((Xr @ (w - P @ w))[T.zid[r] == a]) for a in range(T.mz[r]))
        assert (spread > 0) == (T.mz[r] < T.mc[r])


def test_hierarchical_distribution_meets_focus_and_broadness_exactly():
    import jax

    from verify.sampling import Rng

    for tree, teacher in (("d5-overlap", "drop_leaves"), ("dag8", "drop_leaves"), ("d8-pairs", "count_leaves")):
        s = TT.structure(tree, teacher, 1)
        for seed in range(2):
            pool = jax.random.uniform(jax.random.key(seed), (4096,), minval=1e-9, maxval=1.0)
            x = {"logits": TT.hierarchical_logits(Rng(pool), s)}
            with backend("jax"):
                assert float(TT.focus_deviation(s, x)) < 1e-12 and float(TT.broadness_deviation(s, x)) < 1e-12
                assert float(TT.lossless_deviation(s, x)) > 0.01  # and the teacher is lossy
            general = {"logits": 1.5 * jax.random.normal(jax.random.key(seed), (2 ** len(s["tree"][-1][0]),))}
            with backend("jax"):
                assert float(TT.focus_deviation(s, general)) > 1e-3  # a general P(x) is not focused


def test_event_threshold_gates_whole_events():
    import jax.numpy as jnp

    ids = np.array([0, 0, 1, 1, 2, 2])
    u = jnp.array([[0.0, 0.0], [0.1, 5.0], [1.0, 1.0], [1.2, 4.0], [3.0, 2.0], [3.5, 3.0]])
    for pick in (0.01, 0.5, 1.0):
        t = TT.event_threshold(u, ids, 3, jnp.array([pick, pick]))
        gate = np.asarray(u - t[None, :]) > 0
        for a in range(3):  # constant on each event
            assert (gate[ids == a] == gate[ids == a][0]).all()
        assert gate[:, 0].any() and not gate[:, 0].all()  # column 0 has gaps: both sides occur
        assert gate[:, 1].all()  # column 1's event ranges overlap: no gap, open everywhere


def _labellings(tree, teacher):
    """Every labelling a property conditions on in this layout: each region's content and variable,
    and the joint ones of an edge (the parent's variable with the child's, or with its content)."""
    T = TT.tables(TT.LAYOUTS[tree], teacher)
    out = [(ids, m) for r in range(len(T.regions)) for ids, m in ((T.cid[r], T.mc[r]), (T.zid[r], T.mz[r]))]
    for a, b in T.edges:
        out.append(TT.compact(TT.LAYOUTS[tree], teacher, (("z", a), ("z", b))))
        out.append(TT.compact(TT.LAYOUTS[tree], teacher, (("z", a), ("c", b))))
    return T, out


@pytest.mark.parametrize("tree,teacher", [("dag8", "count_leaves"), ("d6-uneven", "xor_leaves"), ("d5-overlap", "count_leaves"),
                                          ("d4-deep", "xor_all"), ("d2", "label_top")])
def test_segment_sums_and_event_ranges_reduced_over_ignored_pixels_are_the_plain_ones(tree, teacher):
    """The sums and the event ranges are taken over the pixels a labelling ignores first: the same
    sums (to rounding) and the same extremes (exactly) as adding and comparing input by input. Both
    ways occur: labellings that give each pattern of their pixels its own label (a permutation) and
    lossy ones that do not."""
    T, labellings = _labellings(tree, teacher)
    rng = np.random.default_rng(3)
    kinds = set()
    for ids, m in labellings:
        vals = rng.normal(size=(T.N, 3))
        plain = np.zeros((m, 3))
        np.add.at(plain, ids, vals)
        _, free, labels, order = TT._pixel_factor(ids, m)
        kinds.add(order is not None)
        for name in ("jax", "numpy"):
            with backend(name):
                np.testing.assert_allclose(np.asarray(TT.segsum(jnp.asarray(vals) if name == "jax" else vals, ids, m)),
                                           plain, rtol=1e-13, atol=1e-13)
        with backend("highprec"):
            exact = TT.segsum(np.array([[mpmath.mpf(float(v)) for v in row] for row in vals], dtype=object), ids, m)
            np.testing.assert_allclose(np.asarray(exact, dtype=np.float64), plain, rtol=1e-13, atol=1e-13)
        lo, hi = TT._event_range(jnp.asarray(vals), ids, m)
        for a in range(m):
            assert (np.asarray(lo[a]) == vals[ids == a].min(axis=0)).all()
            assert (np.asarray(hi[a]) == vals[ids == a].max(axis=0)).all()
        per_event = rng.normal(size=(m, 3))
        for name in ("jax", "numpy"):  # read back at every input: exactly the gather
            with backend(name):
                assert (np.asarray(TT.at_inputs(jnp.asarray(per_event) if name == "jax" else per_event, ids))
                        == per_event[ids]).all()
        with backend("highprec"):
            exact = np.array([[mpmath.mpf(float(v)) for v in row] for row in per_event], dtype=object)
            assert (TT.at_inputs(exact, ids) == exact[ids]).all()
    assert kinds == {True, False}
    p = rng.dirichlet(np.ones(T.N))
    with backend("jax"):
        zero = {r: jnp.zeros((T.N, 1)) for r in range(len(T.regions))}
        J = TT.event_matrices(TT.structure(tree, teacher, 1), None, {"p": jnp.asarray(p), "F": zero, "D": zero, "G": zero})["J"]
        J = {e: m.dense() for e, m in J.items()}
    for a, b in T.edges:  # the joint law of (z_a, z_b), zero on the pairs that never occur
        plain = np.zeros((T.mz[a], T.mz[b]))
        np.add.at(plain, (T.zid[a], T.zid[b]), p)
        np.testing.assert_allclose(np.asarray(J[(a, b)]), plain, rtol=1e-13, atol=1e-16)


@pytest.mark.parametrize("tree,teacher", [("dag8", "lossless"), ("dag8", "count_leaves"), ("d6-uneven", "xor_leaves"),
                                          ("d5-overlap", "xor_mid"), ("d4-deep", "label_top")])
def test_event_matrix_products_are_the_dense_products(tree, teacher):
    """``P @ X``, ``P.T @ Y`` and the divisions by a column or a row of an event matrix, which sum
    over the pairs of events that occur, are the dense matrix's (to rounding), on every backend;
    both ways of summing occur (one pair per row: a gather; several: a segment sum)."""
    s = TT.structure(tree, teacher, 1)
    T = TT.tables_of(s)
    rng = np.random.default_rng(5)
    p = rng.dirichlet(np.ones(T.N))
    with backend("jax"):
        zero = {r: jnp.zeros((T.N, 1)) for r in range(len(T.regions))}
        E = TT.event_matrices(s, None, {"p": jnp.asarray(p), "F": zero, "D": zero, "G": zero})
    ways = set()
    for a, b in T.edges:
        ma, mb = T.mz[a], T.mz[b]
        vals = np.asarray(E["J"][(a, b)].values)
        dense = np.zeros((ma, mb))
        dense[E["J"][(a, b)].rows, E["J"][(a, b)].cols] = vals
        X, Y = rng.normal(size=(mb, 3)), rng.normal(size=(ma, 3))
        col, row = rng.uniform(0.5, 2.0, size=(ma, 1)), rng.uniform(0.5, 2.0, size=(1, mb))
        ways |= {TT._one_each(E["J"][(a, b)].rows.tobytes(), ma) is not None,
                 TT._one_each(E["J"][(a, b)].cols.tobytes(), mb) is not None}
        for name in ("jax", "numpy", "highprec"):
            conv = {"jax": jnp.asarray, "numpy": np.asarray,
                    "highprec": np.vectorize(lambda t: mpmath.mpf(float(t)), otypes=[object])}[name]
            M = TT.EventMatrix(conv(vals), E["J"][(a, b)].rows, E["J"][(a, b)].cols, (ma, mb))
            with backend(name):
                got = {"M @ X": M @ conv(X), "M.T @ Y": M.T @ conv(Y), "dense": M.dense(),
                       "(M / col) @ X": (M / conv(col)) @ conv(X), "(M / row).T @ Y": (M / conv(row)).T @ conv(Y)}
            want = {"M @ X": dense @ X, "M.T @ Y": dense.T @ Y, "dense": dense,
                    "(M / col) @ X": (dense / col) @ X, "(M / row).T @ Y": (dense / row).T @ Y}
            for k in want:
                np.testing.assert_allclose(np.asarray(got[k], dtype=np.float64), want[k], rtol=1e-13, atol=1e-15,
                                           err_msg=f"{k} on {name} at edge {(a, b)}")
    assert ways == {True, False}
    with pytest.raises(ValueError, match="divides by a column or a row"):
        E["J"][T.edges[0]] / np.ones((2, 2))


@pytest.mark.parametrize("tree,teacher", [("d5-overlap", "xor_mid"), ("dag6", "drop_leaves")])
def test_forward_backward_matches_a_per_input_loop(tree, teacher):
    s = TT.structure(tree, teacher, 2)
    T = TT.tables_of(s)
    x = _instances(s, 4)[0]  # the instances test_t1 uses on dag6 (one compiled sampler)
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
            g[r] = (f[r] > 0) * sum(xn[f"w{pa}_{r}"] @ g[pa] for pa in T.parents[r])
            np.testing.assert_allclose(np.asarray(net["G"][r])[i], g[r], rtol=1e-12, atol=1e-12)


def test_probabilities_positive_and_normalised():
    s = TT.structure("d4-deep", "lossless", 2)
    for x in _instances(s, 4):
        p = np.asarray(TT.probabilities(x))
        assert (p > 0).all() and abs(p.sum() - 1) < 1e-12


@settings(max_examples=30, deadline=None, database=None)
@given(st.one_of(TT.teacher_structures(), M.marginalised_gradient.structure, M.T2_STRUCTURES, M.LOSSLESS_STRUCTURES))
def test_strategy_draws_valid_structures(s):
    T = TT.tables_of(Structure(s))
    assert len(T.kinds) == len(T.regions) and T.top == len(T.regions) - 1
    assert all(T.parents[r] for r in range(T.top)) and T.mz[T.top] <= T.N


def test_regime_predicates():
    lin = {"logits": jnp.zeros(16)}  # d4-deep: every weight 1, every bias 1: all open
    T = TT.tables(TT.LAYOUTS["d4-deep"], "lossless")
    for r, (px, ch) in enumerate(T.regions):
        k = TT.width(T, 1, r)
        if not ch:
            lin[TT.leaf_weight(r)] = jnp.ones((len(px), k))
        for b in ch:
            lin[TT.edge_weight(r, b)] = jnp.ones((TT.width(T, 1, b), k))
        lin[TT.bias(r)] = jnp.ones(k)
    s = TT.structure("d4-deep", "lossless", 1)
    with backend("jax"):
        assert bool(TT.all_gates_open(s, lin)) and bool(TT.gates_constant(s, lin))
        assert bool(TT.is_lossless_equivalent(s, lin)) and not bool(TT.forward_gate_exercised(s, lin))
        shut = dict(lin, b4=jnp.array([-3.5]))  # region 4 (pixels 0, 1: input 2..4) opens only when both are on
        assert not bool(TT.all_gates_open(s, shut)) and not bool(TT.gates_constant(s, shut))
        assert bool(TT.forward_gate_exercised(s, shut))
        dead = dict(lin, b4=jnp.array([-9.0]))  # closed everywhere: not all open, but constant
        assert not bool(TT.all_gates_open(s, dead)) and bool(TT.gates_constant(s, dead))
        # lossless-equivalent whatever the preset is called: XOR of a one-pixel leaf is the pixel
        assert bool(TT.is_lossless_equivalent(TT.structure("d4-deep", "xor_leaves", 1), lin))
        assert not bool(TT.is_lossless_equivalent(TT.structure("d4-deep", "xor_mid", 1), lin))
    with backend("highprec"):  # the same predicates at 50 digits (a replayed counterexample's regime)
        from verify.backends import to_highprec

        hp = to_highprec({k: np.asarray(v) for k, v in shut.items()})
        assert not bool(TT.all_gates_open(s, hp)) and bool(TT.forward_gate_exercised(s, hp))
        assert bool(TT.is_lossless_equivalent(s, hp)) and bool(TT.activations_measurable(s, hp))


# ----------------------------------------------------------------------------- conditions


def test_conditions_by_teacher():
    dev = {}
    for teacher in ("lossless", "label_top", "xor_leaves"):
        s = TT.structure("d4-pairs", teacher, 2)
        xs = _instances(s, 8)
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


#: mutants that differ from the claim only where a region has two parents
DAG_ONLY = {"first_parent_only", "backward_first_parent_only"}


@pytest.mark.parametrize("tree,teacher", [("d5-overlap", "xor_all"), ("dag6", "drop_leaves")])
def test_t1_exact_for_any_teacher_and_mutants_refuted(tree, teacher):
    s = TT.structure(tree, teacher, 2)
    xs = _instances(s, 4)
    assert max(_worst(M.marginalised_gradient.property, s, x) for x in xs) <= 1
    for m in M.marginalised_gradient.mutants:
        worst = max(_worst(m.property, s, x) for x in xs)
        if m.name in DAG_ONLY and tree in TT.TREES:
            assert worst <= 1, m.name  # one parent per region: the same claim
        else:
            assert worst > 1, m.name


@pytest.mark.parametrize("tree", ["dag6", "d4-deep"])
def test_t4_exact_for_lossless_and_every_mutant_refuted(tree):
    """On a lossless teacher of three levels the gates of the middle regions close on some events,
    so T4 without the forward gate fails; on a DAG the backward sum over both parents is needed."""
    s = TT.structure(tree, "lossless", 2)
    xs = _instances(s, 4)
    assert all(_holds(M.matrix_form.assumptions, s, x) for x in xs)
    assert max(_worst(M.matrix_form.property, s, x) for x in xs) <= 1
    with backend("jax"):
        assert any(bool(TT.forward_gate_exercised(s, x)) for x in xs)
    for m in M.matrix_form.mutants:
        worst = max(_worst(m.property, s, x) for x in xs)
        assert (worst <= 1) if (m.name in DAG_ONLY and tree in TT.TREES) else (worst > 1), m.name


@functools.lru_cache(maxsize=None)
def _regime_batch(s, n=256, seed=3):
    """One compiled pass over a batch: T2's conditions, the regime predicates and the worst
    tolerance ratio of each identity, the update identity included, per instance."""
    import jax

    from verify.engine.evaluate import draw_batch, summarise
    from verify.sampling import Rng

    def one(pool):
        x = TT.sample_network(Rng(pool), s)
        out = {a.name: a.holds(s, x) for a in (M.FOCUS, M.BROADNESS, M.DECORRELATION, M.UPDATE_DECORRELATION,
                                               M.DECORRELATION_FORWARD, M.DECORRELATION_BACKWARD)}
        out |= {"lossless": TT.is_lossless_equivalent(s, x), "open": TT.all_gates_open(s, x),
                "constant": TT.gates_constant(s, x)}
        out |= {r.name: r.holds(s, x) for r in M.weight_update.trivial}
        res = as_residuals(M._reform(("forward", "backward", "update"))(s, x))
        for k, r in res.items():
            out[k] = jax.numpy.max(jax.numpy.stack(summarise({k: r}, M.TOL)["ratios"]))
        return out

    pools, _ = draw_batch(TT.sample_network, s, seed, n)
    with backend("jax"):
        return {k: np.asarray(v) for k, v in jax.jit(jax.vmap(one))(pools).items()}


def test_sampler_reaches_lossy_gated_instances_meeting_t2_and_the_weight_update_finding():
    """On a lossy DAG of three levels, the sampler draws (by construction, not by luck) instances
    meeting focus, broadness and decorrelation that are neither lossless nor linear; on them the
    reformulation is exact, the weight update is exact where the update decorrelation also holds,
    and fails (the finding) where it does not."""
    s = TT.structure("dag6", "drop_leaves", 2)
    b = _regime_batch(s)
    t2 = b["focus"] & b["broadness"] & b["decorrelation"]
    hard = t2 & ~b["lossless"] & ~b["open"] & ~b["constant"]
    assert hard.sum() >= 20, int(hard.sum())
    assert b["forward"][t2].max() <= 1 and b["backward"][t2].max() <= 1
    upd = hard & b["update_decorrelation"]
    assert upd.sum() >= 5 and b["update"][t2 & b["update_decorrelation"]].max() <= 1
    finding = hard & ~b["update_decorrelation"]
    assert (b["update"][finding] > 1).sum() >= 5  # the paper's listed conditions do not give the update
    # leaky middle nodes: the backward decorrelation holds, the forward one does not, nor the forward identity
    leaky = b["focus"] & b["broadness"] & b["decorrelation_backward"] & ~b["decorrelation_forward"]
    assert (b["forward"][leaky] > 1).sum() >= 3 and b["backward"][leaky].max() <= 1


def test_t2_and_t3_exact_for_lossless_and_t2_agrees_with_t4():
    s = TT.structure("d4-deep", "lossless", 2)
    for x in _instances(s, 4)[:2]:
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


# ----------------------------------------------------------------------------- trivial regimes


def test_every_claim_expected_true_names_its_trivial_regimes():
    names = {t.id: {r.name for r in t.trivial} for t in (
        M.marginalised_gradient, M.reformulation, M.reformulation_forward, M.reformulation_backward,
        M.weight_update, M.lossless_teacher, M.matrix_form)}
    for tid in ("tian2018.thm2.reformulation", "tian2018.thm2.reformulation.forward",
                "tian2018.thm2.reformulation.backward", "tian2018.thm2.weight-update"):
        assert {"lossless_equivalent", "gates_constant"} <= names[tid], tid  # T3's regime and a linear student
    assert "activations_measurable" in names["tian2018.thm2.weight-update"]
    assert names["tian2018.thm4.matrix-form"] == {"forward_gate_idle", "gates_constant"}
    assert names["tian2018.thm1.marginalised-gradient"] == {"gates_constant"}
    # a lossless theorem cannot name the lossless regime: every instance would be trivial
    assert "lossless_equivalent" not in names["tian2018.thm3.lossless-teacher"] | names["tian2018.thm4.matrix-form"]


def test_regimes_split_a_lossy_batch_and_a_lossless_one():
    """On T2's hard structure the weight update has non-trivial instances meeting all its
    assumptions, and it holds on them; on a lossless teacher every instance is T3's trivial case
    for T2, while T4's forward gate is exercised on some (a lossless deep tree)."""
    hard = _regime_batch(TT.structure("dag6", "drop_leaves", 2))
    met = hard["focus"] & hard["broadness"] & hard["decorrelation"] & hard["update_decorrelation"]
    trivial = np.zeros_like(met)
    for r in M.weight_update.trivial:
        trivial |= hard[r.name]
    assert (met & ~trivial).sum() >= 5 and hard["update"][met & ~trivial].max() <= 1
    xs = _instances(TT.structure("d4-deep", "lossless", 2), 4)
    s = TT.structure("d4-deep", "lossless", 2)
    with backend("jax"):
        assert all(bool(M.LOSSLESS_EQUIVALENT.holds(s, x)) for x in xs)
        assert not all(bool(M.FORWARD_GATE_IDLE.holds(s, x)) for x in xs)


# ----------------------------------------------------------------------------- the symbolic face


def test_teacher_theorems_have_no_derivation_and_use_the_lemmas():
    for t in (M.marginalised_gradient, M.reformulation, M.weight_update, M.lossless_teacher, M.matrix_form):
        assert t.derivation is None, t.id  # tested only: no chain reaches a statement about the student
    assert "tian2018.thm1.conditioning" in M.marginalised_gradient.uses
    assert "tian2018.thm4.grouping" in M.matrix_form.uses


def test_conditioning_lemma_is_proved_for_every_size():
    for d in M.conditioning.derivations:
        r = check_derivation(d)
        assert r.verdict == "proved" and r.scope.all_sizes, d.component


def test_conditioning_lemma_property_and_mutant():
    s = Structure({"C": 2, "F": 3, "I": 2})
    xs = batch_sampler(M.conditioning_instance)(s, 3, 8)
    xs = [{k: jnp.asarray(v[i]) for k, v in xs.items()} for i in range(8)]
    assert max(_worst(M.conditioning.property, s, x, M.conditioning.tolerance) for x in xs) <= 1
    assert max(_worst(M.conditioning.mutants[0].property, s, x, M.conditioning.tolerance) for x in xs) > 1


def test_grouping_lemma_is_proved_exactly_at_the_sizes_written():
    """The backward identity (Bayes weights) at every size written; forward and update at the
    largest one (the run checks every member of all three)."""
    forward, backward, update = M.grouping.derivations
    r = check_derivation(backward)
    assert r.verdict == "proved" and not r.scope.all_sizes
    assert len(backward.members) == len(M.GROUPING_SIZES) ** 2 * 4
    assert all(r.scope.covers(m.size) for m in backward.members)
    assert not r.scope.covers({"ma": 4, "mb": 1, "na": 1, "nb": 1})
    for d in (forward, update):
        assert d.members[-1].size == {"ma": 3, "mb": 3, "na": 2, "nb": 2}
        assert check_derivation(d.members[-1]).verdict == "proved", d.component


def test_grouping_without_bayes_weights_is_refuted_symbolically():
    """The backward identity with P^T in place of Lambda_b^-1 P^T Lambda_a, as a claim with no
    chain: the engine finds an exact rational point where it fails."""
    import sympy as sp

    member = M.grouping.derivations[1].members[16]
    assert member.size == {"ma": 2, "mb": 2, "na": 1, "nb": 1}
    Q, G, W = M._entries(M._Q, 2, 2), M._entries(M._Gm, 2, 1), M._entries(M._Wm, 1, 1)
    P = sp.Matrix(2, 2, lambda a, b: Q[a, b] / sum(Q.row(a)))
    wrong = Derivation(claim=Claim(P.T * G * W.T, "==", member.claim.rhs), component="backward", size=member.size)
    r = check_derivation(wrong)
    assert r.verdict == "refuted" and r.witness["lhs - rhs"] != "0"


def test_grouping_claim_crosschecks_against_its_property_and_a_mislabelled_one_does_not():
    from verify.engine.crosscheck import crosscheck
    from verify.symbolic import Scope

    member = M.grouping.derivations[1].members[16]
    size = Structure(member.size)
    ok = crosscheck(M.grouping, member, Scope.every(), structures=[size])
    assert ok.status == "agrees" and ok.compared > 0
    d = M.grouping.derivations[0].members[16]  # the forward claim, said to be the backward component
    mislabelled = Derivation(d.claim, d.chain, d.facts, d.bind, "backward", d.size, d.entries)
    assert crosscheck(M.grouping, mislabelled, Scope.every(), structures=[size]).status == "disagrees"
