"""An exact model of a finite teacher and a locally connected student (Tian 2018).

Everything here is finite, so every quantity of the reformulation is a finite sum computed
exactly (to rounding) by enumeration:

* inputs ``x`` in ``{0,1}^d`` (all ``N = 2^d`` of them, row ``i`` of :func:`tables` ``.X``) with a
  strictly positive probability vector ``P(x) = softmax(logits)`` (logits, not probabilities, are
  the instance's numbers, so shrinking a counterexample never creates a zero-probability event);
* a tree of receptive fields (regions): leaves are pixel groups, siblings may overlap, the top
  region is the whole input; a region is ``(pixels, children)`` and the top is the last one;
* summarisation variables ``z_r(x)`` (a deterministic function of the pixels inside region r),
  one kind per region: ``content`` (the region's pixel pattern: lossless), ``tuple`` (the tuple of
  the children's values, relabelled: injective in the children, lossless when they are and cover
  the region), ``xor`` (parity of the region's pixels: lossy), ``label`` (the top variable *is*
  the class label, parity of the whole input);
* the label ``y(x)`` = parity of the whole input (so it is a function of a lossless top);
* a student: ``n`` ReLU nodes on every non-top region, leaves reading their pixels, a parent's
  nodes reading all its children's nodes; ``C = 2`` linear output nodes on the top region; an
  optional bias; L2 loss ``|f_top - onehot(y)|^2 / 2``, so the top gradient (negative gradient
  convention, as in the paper) is ``g_top = onehot(y) - f_top`` and ``g_k = f'_k sum_j w_jk g_j``.

Instance keys: ``logits`` (N,), ``w{r}`` (|pixels| x n) and ``b{r}`` for a leaf r, ``w{a}_{b}``
(n_b x n_a: row = child node k, column = parent node j, i.e. W_ba[k, j] = w_jk) for child b of a.

Conditional expectations ``E[h | v]`` for a labelling ``v`` of the inputs are segment sums
(``jax.ops.segment_sum`` on the JAX backend, ``numpy.add.at`` on the 50-digit backend), so the
model runs under ``jit(vmap(...))`` and in mpmath alike. Conventions: ReLU'(0) = 0 (the gate
is ``[pre-activation > 0]``); the top is linear (gate 1).
"""

from __future__ import annotations

import functools
import itertools
from dataclasses import dataclass
from typing import Any

import numpy as np
from hypothesis import strategies as st

from verify.backends import xp

C = 2  # classes (top nodes)

# --------------------------------------------------------------------------- trees

#: named region trees: tuple of (pixels, children); the last region is the top (all pixels)
TREES: dict[str, tuple] = {
    "d2": (((0,), ()), ((1,), ()), ((0, 1), (0, 1))),
    "d3-overlap": (((0, 1), ()), ((1, 2), ()), ((0, 1, 2), (0, 1))),
    "d4-pairs": (((0, 1), ()), ((2, 3), ()), ((0, 1, 2, 3), (0, 1))),
    "d4-deep": (((0,), ()), ((1,), ()), ((2,), ()), ((3,), ()), ((0, 1), (0, 1)), ((2, 3), (2, 3)),
                ((0, 1, 2, 3), (4, 5))),
    "d5-overlap": (((0, 1), ()), ((1, 2), ()), ((2, 3), ()), ((3, 4), ()), ((0, 1, 2), (0, 1)),
                   ((2, 3, 4), (2, 3)), ((0, 1, 2, 3, 4), (4, 5))),
    "d6-uneven": (((0, 1), ()), ((2, 3), ()), ((4, 5), ()), ((0, 1, 2, 3), (0, 1)),
                  ((0, 1, 2, 3, 4, 5), (3, 2))),
}


def pair_tree(d: int, leaf: int = 2) -> tuple:
    """A balanced tree on ``d`` pixels: leaves of ``leaf`` pixels, then regions of two children,
    an odd one out passed up, until one region (the top) covers everything."""
    regions = [(tuple(range(i, min(i + leaf, d))), ()) for i in range(0, d, leaf)]
    level = list(range(len(regions)))
    while len(level) > 1:
        nxt = []
        for i in range(0, len(level) - 1, 2):
            a, b = level[i], level[i + 1]
            regions.append((tuple(sorted(set(regions[a][0]) | set(regions[b][0]))), (a, b)))
            nxt.append(len(regions) - 1)
        if len(level) % 2:
            if len(nxt) == 1 and len(level) == 3:  # fold the odd one into the last merge
                last = regions.pop()
                regions.append((tuple(range(d)), (*last[1], level[-1])))
                break
            nxt.append(level[-1])
        level = nxt
    if len(regions) == 1:  # one leaf: add a top over it
        regions.append((tuple(range(d)), (0,)))
    return tuple(regions)


#: teacher presets: the summarisation kind of (leaves, middle regions, top)
TEACHERS: dict[str, tuple[str, str, str]] = {
    "lossless": ("content", "tuple", "tuple"),
    "label_top": ("content", "tuple", "label"),
    "xor_leaves": ("xor", "tuple", "tuple"),
    "xor_mid": ("content", "xor", "tuple"),
    "xor_all": ("xor", "xor", "xor"),
}


def kinds_of(tree: tuple, teacher: str) -> tuple[str, ...]:
    leaf, mid, top = TEACHERS[teacher]
    R = len(tree)
    return tuple(top if r == R - 1 else (leaf if not tree[r][1] else mid) for r in range(R))


# --------------------------------------------------------------------------- static tables


def _compact(*cols: np.ndarray) -> tuple[np.ndarray, int]:
    """Relabel the rows of the given integer columns as 0..m-1 (an injective labelling)."""
    stacked = np.stack([np.asarray(c, dtype=np.int64) for c in cols], axis=1)
    uniq, inv = np.unique(stacked, axis=0, return_inverse=True)
    return inv.reshape(-1).astype(np.int64), len(uniq)


@dataclass(frozen=True)
class Tables:
    """Static (NumPy) description of one teacher and student layout."""

    d: int
    N: int
    X: np.ndarray  # N x d, 0/1
    regions: tuple  # (pixels, children) per region; top last
    kinds: tuple
    parent: tuple  # parent region of each region (-1 for the top)
    top: int
    cid: tuple  # content id of region r per input
    mc: tuple
    zid: tuple  # summarisation value of region r per input
    mz: tuple
    y: np.ndarray
    Y: np.ndarray  # N x C one-hot targets

    @property
    def edges(self) -> list[tuple[int, int]]:
        """(parent alpha, child beta) pairs, bottom-up."""
        return [(a, b) for a, (_, ch) in enumerate(self.regions) for b in ch]

    def children(self, r: int) -> tuple:
        return self.regions[r][1]

    def is_leaf(self, r: int) -> bool:
        return not self.regions[r][1]


def _validate(tree: tuple) -> int:
    pix = sorted({p for px, _ in tree for p in px})
    d = len(pix)
    if pix != list(range(d)) or tuple(tree[-1][0]) != tuple(range(d)):
        raise ValueError("regions must cover pixels 0..d-1 and the last region (the top) must be all of them")
    seen_parent: dict[int, int] = {}
    for a, (px, ch) in enumerate(tree):
        for b in ch:
            if not b < a:
                raise ValueError("children must come before their parent")
            if b in seen_parent:
                raise ValueError(f"region {b} has two parents")
            if not set(tree[b][0]) <= set(px):
                raise ValueError(f"child {b} is not inside region {a}")
            seen_parent[b] = a
        if ch and set().union(*(set(tree[b][0]) for b in ch)) != set(px):
            raise ValueError(f"children of region {a} do not cover it")
    if set(seen_parent) != set(range(len(tree) - 1)):
        raise ValueError("every region but the top needs a parent")
    return d


@functools.cache
def tables(tree: tuple, teacher: str) -> Tables:
    d = _validate(tree)
    N = 2**d
    X = np.array(list(itertools.product([0, 1], repeat=d)), dtype=np.int64).reshape(N, d)
    kinds = kinds_of(tree, teacher)
    R = len(tree)
    parent = [-1] * R
    for a, (_, ch) in enumerate(tree):
        for b in ch:
            parent[b] = a
    y = X.sum(axis=1) % 2
    cid, mc, zid, mz = [], [], [], []
    for r, (px, ch) in enumerate(tree):
        c, m = _compact(*[X[:, i] for i in px])
        cid.append(c)
        mc.append(m)
        kind = kinds[r]
        if kind == "content" or (kind == "tuple" and not ch):
            z, k = c, m
        elif kind == "tuple":
            z, k = _compact(*[zid[b] for b in ch])
        elif kind == "xor":
            z, k = _compact(X[:, list(px)].sum(axis=1) % 2)
        elif kind == "label":
            z, k = _compact(y)
        else:
            raise ValueError(f"unknown summarisation kind {kind!r}")
        zid.append(z)
        mz.append(k)
    Y = np.eye(C, dtype=np.float64)[y]
    return Tables(d, N, X, tuple(tree), kinds, tuple(parent), R - 1, tuple(cid), tuple(mc), tuple(zid), tuple(mz), y, Y)


def tables_of(s: Any) -> Tables:
    return tables(s["tree"], s["teacher"])


@functools.cache
def compact(tree: tuple, teacher: str, spec: tuple) -> tuple[np.ndarray, int]:
    """Compact joint labelling of several per-input labellings, named ``('c', r)`` (content of
    region r) or ``('z', r)`` (summarisation of region r)."""
    T = tables(tree, teacher)
    cols = [(T.cid if kind == "c" else T.zid)[r] for kind, r in spec]
    return _compact(*cols)


# --------------------------------------------------------------------------- exact sums over xp




def segsum(vals: Any, ids: np.ndarray, m: int) -> Any:
    """``out[a] = sum_{x : ids[x] = a} vals[x]`` (leading axis), on the active backend."""
    return xp.segment_sum(vals, ids, m)


def probabilities(x: Any) -> Any:
    """P(x) = softmax(logits): strictly positive, sums to 1."""
    l = x["logits"]
    e = xp.exp(l - xp.max(l))
    return e / xp.sum(e)


def marginal(p: Any, ids: np.ndarray, m: int) -> Any:
    return segsum(p, ids, m)


def cond_mean(p: Any, H: Any, ids: np.ndarray, m: int) -> Any:
    """E[H | v = a] for each value a (rows), H an N x n matrix of per-input values."""
    return segsum(p[:, None] * H, ids, m) / segsum(p, ids, m)[:, None]


def prob_at(p: Any, ids: np.ndarray, m: int) -> Any:
    """P(v = v(x)) at every input x."""
    return segsum(p, ids, m)[ids]


# --------------------------------------------------------------------------- the student


def leaf_weight(r: int) -> str:
    return f"w{r}"


def edge_weight(a: int, b: int) -> str:
    return f"w{a}_{b}"


def bias(r: int) -> str:
    return f"b{r}"


def width(T: Tables, n: int, r: int) -> int:
    return C if r == T.top else n


def sample_network(rng: Any, s: Any) -> dict[str, Any]:
    """One instance: a distribution over inputs and student weights (a :class:`verify.Rng` sampler).

    Per instance it mixes regimes so one batch holds instances meeting and violating each
    condition of the reformulation:
    P(x) is uniform (25%), a product of independent pixels (35%) or a general random vector (40%);
    with probability 1/4 the network is in its *linear regime* (non-negative weights, biases
    >= 1/2, so every gate is open, which makes every decorrelation condition hold); otherwise
    a bias is present with probability 1/2.
    """
    T = tables_of(s)
    n = s["n"]
    mode = rng.uniform(())
    theta = rng.normal(T.d)
    general = 1.5 * rng.normal(T.N)
    product = xp.asarray(np.asarray(T.X, dtype=np.float64)) @ theta
    logits = xp.where(mode <= 0.25, 0.0 * general, xp.where(mode <= 0.6, product, general))
    linear = rng.coin(0.25)
    has_bias = rng.coin(0.5)
    out = {"logits": logits}

    def weights(shape):
        w = rng.normal(shape)
        return xp.where(linear, xp.abs(w), w)

    def biases(k):
        b = rng.normal(k)
        return xp.where(linear, xp.abs(b) + 0.5, xp.where(has_bias, b, 0.0 * b))

    for r, (px, ch) in enumerate(T.regions):
        k = width(T, n, r)
        if not ch:
            out[leaf_weight(r)] = weights((len(px), k))
        for b in ch:
            out[edge_weight(r, b)] = weights((width(T, n, b), k))
        out[bias(r)] = biases(k)
    return out


def forward_backward(s: Any, x: Any) -> dict[str, Any]:
    """Per-input quantities (N x n_r matrices per region r): pre-activation ``A`` (the raw
    activation, bias included), gate ``D`` (f'), activation ``F``, raw gradient ``R`` and
    gradient ``G`` (``g_top = onehot(y) - f_top``)."""
    T = tables_of(s)
    A, D, F = {}, {}, {}
    for r, (px, ch) in enumerate(T.regions):
        if not ch:
            a = xp.asarray(np.asarray(T.X[:, list(px)], dtype=np.float64)) @ x[leaf_weight(r)]
        else:
            a = sum(F[b] @ x[edge_weight(r, b)] for b in ch)
        a = a + x[bias(r)][None, :]
        A[r] = a
        D[r] = xp.ones(a.shape) if r == T.top else xp.heaviside(a)
        F[r] = a if r == T.top else D[r] * a
    G, Rg = {}, {}
    G[T.top] = xp.asarray(T.Y) - F[T.top]
    Rg[T.top] = G[T.top]
    for r in reversed(range(T.top)):
        pa = T.parent[r]
        Rg[r] = G[pa] @ xp.transpose(x[edge_weight(pa, r)])
        G[r] = D[r] * Rg[r]
    return {"A": A, "D": D, "F": F, "R": Rg, "G": G, "p": probabilities(x)}


# --------------------------------------------------------------------------- event matrices


def event_matrices(s: Any, x: Any, net: dict[str, Any] | None = None) -> dict[str, Any]:
    """Conditioned quantities as matrices over events (row = value of z_r, column = node):
    ``F[r]``, ``D[r]``, ``G[r]`` (= E[. | z_r]); ``lam[r]`` = P(z_r); ``P[(a, b)]`` =
    [P(z_b = j | z_a = i)] (m_a x m_b); ``J[(a, b)]`` the joint P(z_a, z_b)."""
    T = tables_of(s)
    net = net or forward_backward(s, x)
    p = net["p"]
    out: dict[str, Any] = {"F": {}, "D": {}, "G": {}, "lam": {}, "P": {}, "J": {}}
    for r in range(len(T.regions)):
        ids, m = T.zid[r], T.mz[r]
        out["lam"][r] = marginal(p, ids, m)
        for q in ("F", "D", "G"):
            out[q][r] = cond_mean(p, net[q][r], ids, m)
    for a, b in T.edges:
        ma, mb = T.mz[a], T.mz[b]
        J = segsum(p, T.zid[a] * mb + T.zid[b], ma * mb).reshape(ma, mb)
        out["J"][(a, b)] = J
        out["P"][(a, b)] = J / out["lam"][a][:, None]
    return out


# --------------------------------------------------------------------------- conditions, as numbers


def _cond_dev(p: Any, T: Tables, s: Any, target: tuple, given: tuple, fewer: tuple) -> Any:
    """max over inputs |P(target | given) - P(target | fewer)| (fewer is a subset of given)."""
    key = (s["tree"], s["teacher"])
    def pr(spec):
        ids, m = compact(*key, spec)
        return prob_at(p, ids, m)

    return xp.max(xp.abs(pr(target + given) / pr(given) - pr(target + fewer) / pr(fewer)))


def focus_deviation(s: Any, x: Any) -> Any:
    """max over edges (alpha, beta) of |P(x_beta | z_alpha, z_beta) - P(x_beta | z_beta)|."""
    T = tables_of(s)
    p = probabilities(x)
    return xp.max(xp.stack([_cond_dev(p, T, s, (("c", b),), (("z", a), ("z", b)), (("z", b),)) for a, b in T.edges]))


def broadness_deviation(s: Any, x: Any) -> Any:
    """max over edges (alpha, beta) of |P(x_alpha | z_alpha, z_beta) - P(x_alpha | z_alpha)|."""
    T = tables_of(s)
    p = probabilities(x)
    return xp.max(xp.stack([_cond_dev(p, T, s, (("c", a),), (("z", a), ("z", b)), (("z", a),)) for a, b in T.edges]))


def lossless_deviation(s: Any, x: Any, top: bool = True) -> Any:
    """max over regions (the top included when ``top``) and inputs of 1 - P(x_r | z_r):
    0 iff every P(x_r | z_r) is a point mass."""
    T = tables_of(s)
    p = probabilities(x)
    key = (s["tree"], s["teacher"])
    devs = []
    for r in range(len(T.regions)):
        if r == T.top and not top:
            continue
        ids, m = compact(*key, (("c", r), ("z", r)))
        zi, zm = compact(*key, (("z", r),))
        devs.append(xp.max(1.0 - prob_at(p, ids, m) / prob_at(p, zi, zm)))
    return xp.max(xp.stack(devs))


def _cov_dev(p: Any, U: Any, V: Any, ids: np.ndarray, m: int) -> Any:
    """max |Cov(U_i, V_i | v)| / E[|U_i V_i| | v] over values of v and columns i."""
    cov = cond_mean(p, U * V, ids, m) - cond_mean(p, U, ids, m) * cond_mean(p, V, ids, m)
    size = cond_mean(p, xp.abs(U * V), ids, m) + cond_mean(p, xp.abs(U), ids, m) * cond_mean(p, xp.abs(V), ids, m)
    return xp.max(xp.abs(cov) / xp.maximum(size, 1e-300))


def decorrelation_deviation(s: Any, x: Any, forward: bool = True, backward: bool = True) -> Any:
    """Relative size of Cov(f'_j, raw activation_j | z_rf(j)) (forward) and Cov(f'_k, raw
    gradient_k | z_rf(k)) (backward), over every non-top node (the top is linear: gate 1)."""
    T = tables_of(s)
    net = forward_backward(s, x)
    p = net["p"]
    devs = [xp.asarray(0.0)]
    for r in range(T.top):
        ids, m = T.zid[r], T.mz[r]
        if forward and not T.is_leaf(r):
            devs.append(_cov_dev(p, net["D"][r], net["A"][r], ids, m))
        if backward:
            devs.append(_cov_dev(p, net["D"][r], net["R"][r], ids, m))
    return xp.max(xp.stack(devs))


def update_decorrelation_deviation(s: Any, x: Any) -> Any:
    """Relative size of Cov(f_k, g_j | z_alpha) for every edge (alpha, beta), j on alpha, k on beta."""
    T = tables_of(s)
    net = forward_backward(s, x)
    p = net["p"]
    devs = []
    for a, b in T.edges:
        Fk, Gj = net["F"][b], net["G"][a]
        U = xp.reshape(Fk[:, :, None] * xp.ones((1, 1, Gj.shape[1])), (T.N, -1))
        V = xp.reshape(Gj[:, None, :] * xp.ones((1, Fk.shape[1], 1)), (T.N, -1))
        devs.append(_cov_dev(p, U, V, T.zid[a], T.mz[a]))
    return xp.max(xp.stack(devs))


# --------------------------------------------------------------------------- strategies


def teacher_structures(trees: Any = None, teachers: Any = None, n: Any = (1, 2)) -> st.SearchStrategy:
    """Hypothesis strategy for a structure: a named tree (or given trees), a teacher preset and
    the number ``n`` of student nodes per non-top region. Importable for users' own tests."""
    trees = list(TREES) if trees is None else list(trees)
    teachers = list(TEACHERS) if teachers is None else list(teachers)
    tree_values = [TREES[t] if isinstance(t, str) else t for t in trees]
    return st.fixed_dictionaries({
        "tree": st.sampled_from(tree_values),
        "teacher": st.sampled_from(teachers),
        "n": st.sampled_from(list(n)),
    })


def structure(tree: Any, teacher: str = "lossless", n: int = 2):
    """A :class:`verify.Structure` for a named or explicit tree."""
    from verify.values import Structure

    return Structure({"tree": TREES[tree] if isinstance(tree, str) else tree, "teacher": teacher, "n": n})
