"""An exact model of a finite teacher and a locally connected student (Tian 2018).

Everything here is finite, so every quantity of the reformulation is a finite sum computed
exactly (to rounding) by enumeration:

* inputs ``x`` in ``{0,1}^d`` (all ``N = 2^d`` of them, row ``i`` of :func:`tables` ``.X``) with a
  strictly positive probability vector ``P(x) = softmax(logits)`` (logits, not probabilities, are
  the instance's numbers, so shrinking a counterexample never creates a zero-probability event);
* a layout of receptive fields (regions): leaves are pixel groups, siblings may overlap, the top
  region is the whole input; a region is ``(pixels, children)`` and the top is the last one. A
  region may have several parents (:data:`DAGS`), so a node's gradient sums over parents in
  several regions; :data:`TREES` have one parent per region;
* summarisation variables ``z_r(x)`` (a deterministic function of the pixels inside region r),
  one kind per region: ``content`` (the region's pixel pattern: lossless), ``tuple`` (the tuple of
  the children's values, relabelled: injective in the children, lossless when they are and cover
  the region), ``xor`` (parity of the region's pixels: lossy), ``count`` (number of ones: lossy),
  ``drop`` (a leaf's pattern without its last private pixel, one in no other leaf: lossy),
  ``label`` (the top variable *is* the class label);
* the label ``y(x)`` = parity of the input's pixels, those a ``drop`` leaf discards excepted
  (so it is a function of the top variable of every ``tuple``-topped preset on leaves that
  partition the input);
* a student: ``n`` ReLU nodes on every non-top region, leaves reading their pixels, a parent's
  nodes reading all its children's nodes; ``C = 2`` linear output nodes on the top region; an
  optional bias; L2 loss ``|f_top - onehot(y)|^2 / 2``, so the top gradient (negative gradient
  convention, as in the paper) is ``g_top = onehot(y) - f_top`` and
  ``g_k = f'_k sum_{j in pa(k)} w_jk g_j``.

Instance keys: ``logits`` (N,), ``w{r}`` (|pixels| x n) and ``b{r}`` for a leaf r, ``w{a}_{b}``
(n_b x n_a: row = child node k, column = parent node j, i.e. W_ba[k, j] = w_jk) for child b of a.

Conditional expectations ``E[h | v]`` for a labelling ``v`` of the inputs are segment sums
(:func:`segsum`: first a sum over the pixels ``v`` ignores, then ``xp.segment_sum`` or a
permutation over the patterns of the rest), and a function of ``v`` is read at every input by
broadcasting over those pixels (:func:`at_inputs`), so the model runs under ``jit(vmap(...))``
and in mpmath alike. Conventions: ReLU'(0) = 0 (the gate
is ``[pre-activation > 0]``); the top is linear (gate 1).

Reaching the hard regime of T2 by construction
----------------------------------------------

Theorem 2 is interesting where it is not Theorem 3: on a lossy teacher, with gates that close on
some events, deeper than two levels. Random instances almost never meet its exact conditions
there. :func:`sample_network` builds instances that meet them exactly:

* *Broadness*, ``P(x_alpha | z_alpha, z_beta) = P(x_alpha | z_alpha)``: at an input, the left side
  is ``P(x_alpha | z_alpha) / P(z_beta | z_alpha)`` (z_beta is a function of x_alpha), so broadness
  says that z_alpha determines every child's z_beta. It holds for ``tuple`` regions, lossy or not.
* *Focus*, ``x_beta`` independent of ``z_alpha`` given ``z_beta``: take
  ``P(x) = Q(z_leaves(x)) prod_l P_l(x_l | z_l(x_l))`` (:func:`hierarchical_logits`) with any
  positive ``Q`` and ``P_l``. When each leaf's variable determines the leaf's pixels shared with
  other leaves (``drop`` keeps them; on leaves that partition the input any kind does), the
  contents given all leaf values are independent, each with law ``P_l(. | z_l)``. Every region
  above the leaves is a union of leaves whose ``tuple`` variable is the tuple of its leaves'
  values, so given z_beta the content x_beta depends on nothing else: not on z_alpha (focus),
  nor on z_top.
* *Decorrelation*, ``Cov(f'_j, pre-activation_j | z) = Cov(f'_k, raw gradient_k | z) = 0``: make
  every gate a function of its own region's variable. Bottom-up, with the weights fixed, the
  pre-activation of node j without bias takes a range of values [lo_a, hi_a] on each event
  z = a; a bias ``-t`` with ``t`` inside a gap between these ranges (:func:`event_threshold`) closes
  the node on the events below the gap and opens it above, so f'_j is constant on every event
  and both covariances vanish exactly, while the activation still varies inside an event. Gaps
  exist when the within-event variation is small next to the between-event one: a leaf weight
  ``w`` is split into ``P w`` (``P`` = :attr:`Tables.measurable`, the projector onto weights with
  ``w . x`` a function of the leaf variable) plus a scaled remainder.
* *Update decorrelation*, ``Cov(f_k, g_j | z_alpha) = 0`` (used by the paper, not listed): it holds
  when every activation is a function of its region's variable (remainder scaled to 0), and also
  while activations vary, when the varying leaf nodes are *silent* (no parent reads them): then
  f_top and, y being a function of z_top, every gradient is a function of z_top, while a silent
  f_k is a function of x_beta, independent of z_top given z_beta (above), so
  ``E[f_k | z_top] = E[f_k | z_alpha]`` and the covariance is 0. With the remainder scaled in
  (0, 1) and read by the parents, the update
  decorrelation fails while focus, broadness and decorrelation hold: the instances on which the
  weight update under the paper's listed conditions alone fails.

The lossy presets ``drop_leaves`` and ``count_leaves`` on layouts of two-pixel leaves (``d6-uneven``,
``d8-pairs``, ``dag6``, ``dag8``, and ``d5-overlap`` for ``drop``) then give instances of every kind
above. The predicates :func:`is_lossless_equivalent`, :func:`all_gates_open`,
:func:`gates_constant`, :func:`activations_measurable` and :func:`forward_gate_exercised` name the
regimes where a claim holds for a trivial reason, so that non-trivial instances can be counted.
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
    # three levels of two-pixel leaves: a "drop" teacher is lossy at every leaf (see TEACHERS)
    "d8-pairs": (((0, 1), ()), ((2, 3), ()), ((4, 5), ()), ((6, 7), ()), ((0, 1, 2, 3), (0, 1)),
                 ((4, 5, 6, 7), (2, 3)), (tuple(range(8)), (4, 5))),
}

#: named region DAGs: as TREES, but a region may have several parents (the sum over parents
#: pa(k) in the backward identities is then more than one term)
DAGS: dict[str, tuple] = {
    # the middle pixel's leaf feeds both middle regions
    "dag3": (((0,), ()), ((1,), ()), ((2,), ()), ((0, 1), (0, 1)), ((1, 2), (1, 2)), ((0, 1, 2), (3, 4))),
    # leaf (2, 3) has two parents; two-pixel leaves, so "drop" makes every leaf lossy
    "dag6": (((0, 1), ()), ((2, 3), ()), ((4, 5), ()), ((0, 1, 2, 3), (0, 1)), ((2, 3, 4, 5), (1, 2)),
             (tuple(range(6)), (3, 4))),
    # four levels; the middle region (2..5) and the leaves (2, 3), (4, 5) have two parents each
    "dag8": (((0, 1), ()), ((2, 3), ()), ((4, 5), ()), ((6, 7), ()),
             ((0, 1, 2, 3), (0, 1)), ((2, 3, 4, 5), (1, 2)), ((4, 5, 6, 7), (2, 3)),
             ((0, 1, 2, 3, 4, 5), (4, 5)), ((2, 3, 4, 5, 6, 7), (5, 6)), (tuple(range(8)), (7, 8))),
}

#: every named layout, trees first
LAYOUTS: dict[str, tuple] = {**TREES, **DAGS}


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
    "drop_leaves": ("drop", "tuple", "tuple"),
    "count_leaves": ("count", "tuple", "tuple"),
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
    parents: tuple  # parent regions of each region (() for the top; several in a DAG)
    top: int
    cid: tuple  # content id of region r per input
    mc: tuple
    zid: tuple  # summarisation value of region r per input
    mz: tuple
    y: np.ndarray
    Y: np.ndarray  # N x C one-hot targets
    measurable: tuple  # per leaf: the projector onto leaf weights w with w.x a function of z_r (None above)
    dropped: tuple  # pixels a "drop" leaf discards (the label ignores them)

    @property
    def edges(self) -> list[tuple[int, int]]:
        """(parent alpha, child beta) pairs, bottom-up."""
        return [(a, b) for a, (_, ch) in enumerate(self.regions) for b in ch]

    def children(self, r: int) -> tuple:
        return self.regions[r][1]

    def is_leaf(self, r: int) -> bool:
        return not self.regions[r][1]


def _validate(tree: tuple) -> int:
    """A layout is valid when its regions cover pixels 0..d-1, the last one (the top) is all of
    them, children come before their parents, lie inside them and cover them, a region lists a
    child once, and every region but the top has a parent (one in a tree, several in a DAG)."""
    pix = sorted({p for px, _ in tree for p in px})
    d = len(pix)
    if pix != list(range(d)) or tuple(tree[-1][0]) != tuple(range(d)):
        raise ValueError("regions must cover pixels 0..d-1 and the last region (the top) must be all of them")
    has_parent: set[int] = set()
    for a, (px, ch) in enumerate(tree):
        if len(set(ch)) != len(ch):
            raise ValueError(f"region {a} lists a child twice")
        for b in ch:
            if not b < a:
                raise ValueError("children must come before their parent")
            if not set(tree[b][0]) <= set(px):
                raise ValueError(f"child {b} is not inside region {a}")
            has_parent.add(b)
        if ch and set().union(*(set(tree[b][0]) for b in ch)) != set(px):
            raise ValueError(f"children of region {a} do not cover it")
    if has_parent != set(range(len(tree) - 1)):
        raise ValueError("every region but the top needs a parent")
    return d


def _measurable_projector(Xr: np.ndarray, z: np.ndarray) -> np.ndarray:
    """The orthogonal projector onto the leaf weights ``w`` for which ``w . x_r`` is a function of
    ``z_r`` (the same on every content of an event): ``w`` orthogonal to every difference of two
    contents sharing a value. Computed exactly (SymPy rationals), so ``(P w) . x`` is the same
    float on every content of an event whenever P's rows are 0/1 or equal (drop, count, content)."""
    import sympy as sp

    # only distinct (content, value) pairs matter: at most 2^|region| rows, not one per input
    # (pairs of inputs would be ~N^2 / 2: millions at d = 12)
    keys = np.unique(np.column_stack([Xr, z]), axis=0)
    Xr, z = keys[:, :-1], keys[:, -1]
    diffs = [Xr[i] - Xr[j] for i in range(len(z)) for j in range(i) if z[i] == z[j]]
    p = Xr.shape[1]
    if not diffs:
        return np.eye(p)
    B = sp.Matrix(np.unique(np.array(diffs), axis=0).tolist()).rref()[0]
    B = B[[i for i in range(B.rows) if any(B.row(i))], :]
    proj = B.T * (B * B.T).inv() * B
    return np.array((sp.eye(p) - proj).tolist(), dtype=np.float64)


@functools.cache
def tables(tree: tuple, teacher: str) -> Tables:
    d = _validate(tree)
    N = 2**d
    X = np.array(list(itertools.product([0, 1], repeat=d)), dtype=np.int64).reshape(N, d)
    kinds = kinds_of(tree, teacher)
    R = len(tree)
    parents: list[list[int]] = [[] for _ in range(R)]
    for a, (_, ch) in enumerate(tree):
        for b in ch:
            parents[b].append(a)
    leaves_of = {p: [r for r, (px, ch) in enumerate(tree) if not ch and p in px] for p in range(d)}
    dropped = sorted(_dropped_pixel(tree, r, leaves_of) for r in range(R)
                     if kinds[r] == "drop" and _dropped_pixel(tree, r, leaves_of) is not None)
    kept = [i for i in range(d) if i not in dropped]
    y = X[:, kept].sum(axis=1) % 2
    cid, mc, zid, mz, measurable = [], [], [], [], []
    for r, (px, ch) in enumerate(tree):
        c, m = _compact(*[X[:, i] for i in px])
        cid.append(c)
        mc.append(m)
        kind = kinds[r]
        drop = _dropped_pixel(tree, r, leaves_of) if kind == "drop" else None
        if kind == "content" or (kind in ("tuple", "drop") and not ch and drop is None):
            z, k = c, m
        elif kind == "drop" and not ch:
            z, k = _compact(*[X[:, i] for i in px if i != drop])
        elif kind in ("tuple", "drop"):
            z, k = _compact(*[zid[b] for b in ch])
        elif kind == "xor":
            z, k = _compact(X[:, list(px)].sum(axis=1) % 2)
        elif kind == "count":
            z, k = _compact(X[:, list(px)].sum(axis=1))
        elif kind == "label":
            z, k = _compact(y)
        else:
            raise ValueError(f"unknown summarisation kind {kind!r}")
        zid.append(z)
        mz.append(k)
        measurable.append(None if ch else _measurable_projector(X[:, list(px)], z))
    Y = np.eye(C, dtype=np.float64)[y]
    return Tables(d, N, X, tuple(tree), kinds, tuple(tuple(p) for p in parents), R - 1, tuple(cid), tuple(mc),
                  tuple(zid), tuple(mz), y, Y, tuple(measurable), tuple(dropped))


def _dropped_pixel(tree: tuple, r: int, leaves_of: dict) -> int | None:
    """The pixel a ``drop`` leaf discards: its last private pixel (in no other leaf), provided the
    leaf has at least two pixels; None for a one-pixel leaf, one without a private pixel, or a
    region that is not a leaf."""
    px, ch = tree[r]
    if ch or len(px) < 2:
        return None
    private = [i for i in px if leaves_of[i] == [r]]
    return private[-1] if private else None


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




def _pixel_factor(ids: np.ndarray, m: int) -> tuple[int, tuple[int, ...], np.ndarray, np.ndarray | None] | None:
    """How a labelling of the ``N = 2^d`` inputs factors through their pixels: ``d``, the pixels it
    does not depend on (flipping one never changes the label), the labels of the ``2^k`` patterns
    of the other pixels (row-major, as :func:`tables` orders the inputs), and, when those patterns
    carry the ``m`` labels one each, the pattern of each label (else None). None when N is not a
    power of two (not a labelling of this model's inputs)."""
    ids = np.asarray(ids, dtype=np.int64)
    if len(ids) < 2 or len(ids) & (len(ids) - 1):
        return None
    return _factor(ids.tobytes(), m)


@functools.lru_cache(maxsize=4096)
def _factor(ids_bytes: bytes, m: int) -> tuple[int, tuple[int, ...], np.ndarray, np.ndarray | None]:
    ids = np.frombuffer(ids_bytes, dtype=np.int64)
    d = len(ids).bit_length() - 1
    index = np.arange(len(ids))
    free = tuple(j for j in range(d) if np.array_equal(ids, ids[index ^ (1 << (d - 1 - j))]))
    cube = ids.reshape((2,) * d)
    labels = cube[tuple(0 if j in free else slice(None) for j in range(d))].reshape(-1)
    return d, free, labels, _one_each(np.ascontiguousarray(labels).tobytes(), m)


@functools.lru_cache(maxsize=4096)
def _one_each(labels_bytes: bytes, m: int) -> np.ndarray | None:
    """When the labels are ``0..m-1`` once each, the position of each label (else None)."""
    labels = np.frombuffer(labels_bytes, dtype=np.int64)
    if len(labels) != m or not np.array_equal(np.sort(labels), np.arange(m)):
        return None
    return np.argsort(labels)


def _sum_by_label(vals: Any, labels: np.ndarray, m: int) -> Any:
    """``out[a] = sum of vals[t] over the rows t with labels[t] = a`` (leading axis): a permutation
    of the rows when each label has one, else a segment sum."""
    order = _one_each(np.ascontiguousarray(labels, dtype=np.int64).tobytes(), m)
    if order is None:
        return xp.segment_sum(vals, labels, m)
    if np.array_equal(order, np.arange(m)):
        return vals
    return vals[order]


def segsum(vals: Any, ids: np.ndarray, m: int) -> Any:
    """``out[a] = sum_{x : ids[x] = a} vals[x]`` (leading axis), on the active backend.

    Every labelling here is a function of some of the input's pixels, so the sum first adds over
    the pixels it ignores (a reduction over axes of the ``(2,) * d`` cube of inputs: N terms), then
    over the ``2^k`` patterns of the rest (a permutation when each pattern has its own label, a
    segment sum otherwise). A dense ``m x N`` indicator product would spend ``m`` times that."""
    factor = _pixel_factor(ids, m)
    if factor is None:
        return xp.segment_sum(vals, ids, m)
    d, free, labels, order = factor
    rest = tuple(vals.shape[1:])
    if free:
        vals = xp.reshape(xp.sum(xp.reshape(vals, (2,) * d + rest), axis=free), (len(labels),) + rest)
    return _sum_by_label(vals, labels, m)


def at_inputs(values: Any, ids: np.ndarray) -> Any:
    """``values[ids]``: a function of a labelling's values (row ``a`` = its value on ``{ids = a}``)
    read at every input. Spread over the pixels the labelling ignores by broadcasting, not
    gathered input by input: XLA fuses the sums that made ``values`` into a gather, computing
    them again for every input (on tian2018.thm3's dag8 layout, a third of its time)."""
    factor = _pixel_factor(ids, values.shape[0])
    if factor is None:
        return values[ids]
    d, free, labels, _ = factor
    rest = tuple(values.shape[1:])
    if not np.array_equal(labels, np.arange(len(labels))):
        values = values[labels]  # one row per pattern of the pixels it reads (a permutation, or fewer)
    if not free:
        return values
    cube = xp.reshape(values, tuple(1 if j in free else 2 for j in range(d)) + rest)
    return xp.reshape(xp.broadcast_to(cube, (2,) * d + rest), (2**d,) + rest)


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
    return at_inputs(segsum(p, ids, m), ids)


# --------------------------------------------------------------------------- the student


def leaf_weight(r: int) -> str:
    return f"w{r}"


def edge_weight(a: int, b: int) -> str:
    return f"w{a}_{b}"


def bias(r: int) -> str:
    return f"b{r}"


def width(T: Tables, n: int, r: int) -> int:
    return C if r == T.top else n


def _input_to_region(T: Tables, r: int, x: Any, F: dict) -> Any:
    """Pre-activation of region r's nodes without the bias, at every input (N x n_r)."""
    px, ch = T.regions[r]
    if not ch:
        return xp.asarray(np.asarray(T.X[:, list(px)], dtype=np.float64)) @ x[leaf_weight(r)]
    return sum(F[b] @ x[edge_weight(r, b)] for b in ch)


@functools.cache
def _leaf_maps(tree: tuple, teacher: str) -> tuple:
    """Static maps for :func:`hierarchical_logits`: the joint labelling of all leaves' variables
    (and its size), and per leaf its content -> value map."""
    T = tables(tree, teacher)
    leaves = [r for r in range(len(T.regions)) if T.is_leaf(r)]
    joint, mj = _compact(*[T.zid[r] for r in leaves])
    maps = []
    for r in leaves:
        cz = np.zeros(T.mc[r], dtype=np.int64)
        cz[T.cid[r]] = T.zid[r]
        maps.append((r, cz))
    return joint, mj, tuple(maps)


def hierarchical_logits(rng: Any, s: Any, spread: float = 1.5) -> Any:
    """Logits of ``P(x) = Q(z_leaves(x)) prod_leaves P_l(x_l | z_l)``: an arbitrary positive law
    ``Q`` of the leaves' joint value and, per leaf, an arbitrary positive law of its content given
    its value (all random, log-scale ``spread``). Under it a leaf's content depends on the rest of
    the input only through its own variable; see the module docstring for why focus follows."""
    T = tables_of(s)
    joint, mj, maps = _leaf_maps(s["tree"], s["teacher"])
    logits = spread * rng.normal(mj)[joint]
    for r, cz in maps:
        u = spread * rng.normal(T.mc[r])
        lse = xp.log(segsum(xp.exp(u), cz, T.mz[r]))
        logits = logits + at_inputs(u - lse[cz], T.cid[r])
    return logits


#: a threshold must sit in a gap between events' pre-activation ranges wider than this (relative to
#: max |pre-activation| + 1): far above float64 rounding of the forward pass (~1e-15), so the
#: property's own forward pass gates each event as the sampler meant
GAP_MARGIN = 1e-6


def _event_range(u: Any, ids: np.ndarray, m: int) -> tuple[Any, Any]:
    """Per event (row) and column of ``u`` (N x k), the least and the greatest value of ``u`` on the
    event's inputs: reduced first over the pixels the labelling ignores, as :func:`segsum` adds."""
    import jax.numpy as jnp

    ids = np.asarray(ids, dtype=np.int64)
    factor = _pixel_factor(ids, m)
    if factor is not None:
        d, free, ids, order = factor
        cube = jnp.reshape(u, (2,) * d + u.shape[1:])
        lo = jnp.reshape(jnp.min(cube, axis=free), (len(ids),) + u.shape[1:])
        hi = jnp.reshape(jnp.max(cube, axis=free), (len(ids),) + u.shape[1:])
        if order is not None:
            return lo[order], hi[order]
    else:
        lo = hi = u
    member = np.zeros((m, len(ids), 1), dtype=bool)
    member[ids, np.arange(len(ids)), 0] = True
    return (jnp.min(jnp.where(member, lo[None], jnp.inf), axis=1),
            jnp.max(jnp.where(member, hi[None], -jnp.inf), axis=1))


def event_threshold(u: Any, ids: np.ndarray, m: int, pick: Any) -> Any:
    """Per node (column of ``u``, the pre-activations without bias at every input): a threshold
    ``t`` such that every event {z = a} lies wholly above it or wholly at/below it, with at least
    one event on each side. The candidates are the events' maxima ``hi_a``: one is valid when no
    event's range [lo_b, hi_b] straddles it (hi_b <= hi_a, or lo_b exceeds hi_a by more than
    :data:`GAP_MARGIN`, relative); ``t`` is the midpoint between ``hi_a`` and the lowest ``lo_b``
    above it, for the valid candidate chosen by ``pick`` in (0, 1]. Where none is valid (one
    event, or ranges that overlap) ``t`` is below every value: the node is open everywhere. With
    bias ``-t`` the gate f' = [u - t > 0] is a function of z (constant on each event). Pairwise
    comparisons of the m events, no sort or scatter: quick to compile (JAX only)."""
    import jax.numpy as jnp

    fallback = jnp.min(u, axis=0) - 1.0
    if m < 2:
        return fallback
    lo, hi = _event_range(u, ids, m)  # m x k
    margin = GAP_MARGIN * (jnp.max(jnp.abs(u), axis=0) + 1.0)
    below = hi[None, :, :] <= hi[:, None, :]  # [a, b]: event b wholly at or below hi_a
    above = lo[None, :, :] > hi[:, None, :] + margin
    valid = jnp.all(below | above, axis=1) & jnp.any(above, axis=1)  # m x k
    count = jnp.sum(valid, axis=0)
    kth = jnp.floor((1.0 - pick) * count)  # 0 .. count - 1
    a = jnp.argmax(jnp.cumsum(valid, axis=0) > kth, axis=0)
    cut = jnp.take_along_axis(hi, a[None], axis=0)[0]  # the chosen hi_a, per node
    # the lowest lo_b above it (only the chosen candidate's row of ``above``: m x k, not m x m x k)
    nxt = jnp.min(jnp.where(lo > cut[None, :] + margin[None, :], lo, jnp.inf), axis=0)
    return jnp.where(count > 0, (cut + nxt) / 2, fallback)


def sample_network(rng: Any, s: Any) -> dict[str, Any]:
    """One instance: a distribution over inputs and student weights (a :class:`verify.Rng` sampler).

    Per instance it mixes regimes, so that one batch holds instances meeting and violating each
    condition of the reformulation, and the hard regime is reached by construction:

    * P(x): uniform (10%), a product of independent pixels (20%), a general random vector (30%),
      or :func:`hierarchical_logits` (40%), under which focus holds for every teacher whose leaf
      variables determine the leaves' shared pixels and whose other regions are ``tuple``;
    * weights: the *linear regime* (15%: non-negative weights, biases >= 1/2, every gate open);
      *event-gated* (50%: every non-top node's bias from :func:`event_threshold`, bottom-up, so
      each gate is a function of its own region's variable and both decorrelations hold, with some
      gates closed wherever the events' ranges leave a gap); *free* (35%: Gaussian weights, a bias
      with probability 1/2).
    * in the event-gated regime a leaf weight ``w`` splits into ``P w`` (``P`` =
      ``Tables.measurable``: the part under which ``w . x`` is a function of the leaf's variable) and
      the rest, which is scaled by a random factor in [0.05, 0.6) (40%: activations vary within
      events), zero (30%: every activation is a function of the teacher's variables), or zero but
      for *silent* leaf nodes (30%: each leaf node with probability 1/2 keeps all of ``w`` and no
      parent reads it), so that the update decorrelation holds while activations vary;
    * independently, 30% of event-gated instances have *leaky* middle nodes (each with probability
      1/2): no parent reads them and their threshold lies anywhere in their range, so on a lossy
      teacher their gate splits events (the forward decorrelation fails at them) while, their raw
      gradient being 0, the backward decorrelation still holds: the instances that show the
      forward identity needs the forward decorrelation.
    """
    T = tables_of(s)
    n = s["n"]
    R = len(T.regions)
    # ---- P(x)
    mode = rng.uniform(())
    theta = rng.normal(T.d)
    general = 1.5 * rng.normal(T.N)
    hier = hierarchical_logits(rng, s)
    product = xp.asarray(np.asarray(T.X, dtype=np.float64)) @ theta
    logits = xp.where(mode <= 0.1, 0.0 * general,
                      xp.where(mode <= 0.3, product, xp.where(mode <= 0.6, general, hier)))
    # ---- regimes of the weights
    wmode = rng.uniform(())
    linear, events = wmode <= 0.15, (wmode > 0.15) & (wmode <= 0.65)
    has_bias = rng.coin(0.5)
    sub = rng.uniform(())
    remainder_scale = xp.where(sub <= 0.4, rng.uniform((), 0.05, 0.6), 0.0)
    silent_mode = sub > 0.7
    leaky_mode = rng.coin(0.3)
    raw, ev, silent, leaky = {}, {}, {}, {}
    for r, (px, ch) in enumerate(T.regions):
        k = width(T, n, r)
        if not ch:
            w = rng.normal((len(px), k))
            raw[leaf_weight(r)] = w
            silent[r] = silent_mode & rng.coin(0.5, (k,))
            wm = xp.asarray(T.measurable[r]) @ w
            ev[leaf_weight(r)] = wm + (w - wm) * xp.where(silent[r], 1.0, remainder_scale)[None, :]
        elif r != T.top:
            silent[r] = leaky[r] = leaky_mode & rng.coin(0.5, (k,))
        for b in ch:
            W = rng.normal((width(T, n, b), k))
            raw[edge_weight(r, b)] = W
            ev[edge_weight(r, b)] = xp.where(silent[b][:, None], 0.0, W)
        raw[bias(r)] = rng.normal(k)
    picks = {r: rng.uniform((width(T, n, r),)) for r in range(T.top)}
    # ---- event-gated biases, bottom-up through the event-gated weights
    F = {}
    for r in range(R):
        u = _input_to_region(T, r, ev, F)
        if r == T.top:
            ev[bias(r)] = raw[bias(r)]
            continue
        t = event_threshold(u, T.zid[r], T.mz[r], picks[r])
        if r in leaky:  # a threshold anywhere in the node's range: its gate may split events
            lo, hi = xp.min(u, axis=0), xp.max(u, axis=0)
            t = xp.where(leaky[r], lo + (hi - lo) * picks[r], t)
        ev[bias(r)] = -t
        F[r] = xp.heaviside(u - t) * (u - t)
    out = {"logits": logits}
    biases = {bias(r) for r in range(R)}
    for key, w in raw.items():
        if key in biases:
            other = xp.where(linear, xp.abs(w) + 0.5, xp.where(has_bias, w, 0.0 * w))
        else:
            other = xp.where(linear, xp.abs(w), w)
        out[key] = xp.where(events, ev[key], other)
    return out


def forward_backward(s: Any, x: Any) -> dict[str, Any]:
    """Per-input quantities (N x n_r matrices per region r): pre-activation ``A`` (the raw
    activation, bias included), gate ``D`` (f'), activation ``F``, raw gradient ``R`` and
    gradient ``G`` (``g_top = onehot(y) - f_top``)."""
    T = tables_of(s)
    A, D, F = {}, {}, {}
    for r in range(len(T.regions)):
        a = _input_to_region(T, r, x, F) + x[bias(r)][None, :]
        A[r] = a
        D[r] = xp.ones(a.shape) if r == T.top else xp.heaviside(a)
        F[r] = a if r == T.top else D[r] * a
    G, Rg = {}, {}
    G[T.top] = xp.asarray(T.Y) - F[T.top]
    Rg[T.top] = G[T.top]
    for r in reversed(range(T.top)):  # parents come after their children: their G is ready
        Rg[r] = sum(G[pa] @ xp.transpose(x[edge_weight(pa, r)]) for pa in T.parents[r])
        G[r] = D[r] * Rg[r]
    return {"A": A, "D": D, "F": F, "R": Rg, "G": G, "p": probabilities(x)}


# --------------------------------------------------------------------------- event matrices


@functools.cache
def _pairs(tree: tuple, teacher: str, a: int, b: int) -> tuple[np.ndarray, int, np.ndarray, np.ndarray]:
    """The joint labelling of ``(z_a, z_b)`` over the pairs that occur (``k`` of them), and each
    pair's value of ``z_a`` and of ``z_b``."""
    T = tables(tree, teacher)
    ids, k = compact(tree, teacher, (("z", a), ("z", b)))
    rows, cols = np.zeros(k, dtype=np.int64), np.zeros(k, dtype=np.int64)
    rows[ids], cols[ids] = T.zid[a], T.zid[b]
    return ids, k, rows, cols


class EventMatrix:
    """A matrix over the events of two regions, ``m_a x m_b``, that is zero at every pair of events
    that no input takes: its entries at the ``k`` pairs that occur (``values[t]`` at
    ``(rows[t], cols[t])``). ``M @ X`` and ``M.T @ Y`` are the matrix products, summed over the
    pairs that occur only (the other terms are exact zeros): a dense ``256 x 64`` matrix on
    tian2018.thm4's dag8 layout has 256 such entries. ``M / v`` divides by a column (``v`` of
    shape ``(m_a, 1)``) or a row (``(1, m_b)``) as for an array; :meth:`dense` is the array."""

    def __init__(self, values: Any, rows: np.ndarray, cols: np.ndarray, shape: tuple[int, int]) -> None:
        self.values, self.rows, self.cols, self.shape = values, rows, cols, tuple(shape)

    @property
    def T(self) -> "EventMatrix":
        return EventMatrix(self.values, self.cols, self.rows, self.shape[::-1])

    def __matmul__(self, X: Any) -> Any:
        return _sum_by_label(self.values[:, None] * X[self.cols], self.rows, self.shape[0])

    def __truediv__(self, v: Any) -> "EventMatrix":
        vshape = tuple(v.shape)
        if vshape == (self.shape[0], 1):
            return EventMatrix(self.values / v[self.rows, 0], self.rows, self.cols, self.shape)
        if vshape == (1, self.shape[1]):
            return EventMatrix(self.values / v[0, self.cols], self.rows, self.cols, self.shape)
        raise ValueError(f"an event matrix of shape {self.shape} divides by a column or a row, not {vshape}")

    def dense(self) -> Any:
        """The ``m_a x m_b`` array (0 at the pairs that never occur)."""
        ma, mb = self.shape
        place = np.full(ma * mb, len(self.rows), dtype=np.int64)
        place[self.rows * mb + self.cols] = np.arange(len(self.rows))
        return xp.reshape(xp.concatenate([self.values, xp.zeros((1,))])[place], (ma, mb))


def event_matrices(s: Any, x: Any, net: dict[str, Any] | None = None) -> dict[str, Any]:
    """Conditioned quantities as matrices over events (row = value of z_r, column = node):
    ``F[r]``, ``D[r]``, ``G[r]`` (= E[. | z_r]); ``lam[r]`` = P(z_r); ``P[(a, b)]`` =
    [P(z_b = j | z_a = i)] (m_a x m_b) and ``J[(a, b)]`` the joint P(z_a, z_b), as
    :class:`EventMatrix` (their products sum over the pairs of events that occur)."""
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
        ids, k, rows, cols = _pairs(s["tree"], s["teacher"], a, b)
        J = EventMatrix(segsum(p, ids, k), rows, cols, (T.mz[a], T.mz[b]))
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


# --------------------------------------------------------------------------- trivial regimes

#: deviation below which a regime predicate counts a region as lossless (as the theorems' COND_TOL:
#: a deviation is a difference of ratios of <= 4096-term sums of probabilities, rounding <~ 1e-12)
TRIVIAL_TOL = 1e-9


def is_lossless_equivalent(s: Any, x: Any, tol: float = TRIVIAL_TOL) -> Any:
    """True when the teacher is lossless on this instance, whatever its preset is called: every
    region's variable (the top included) determines the region's content, i.e. every
    ``P(x_r | z_r)`` is a point mass (:func:`lossless_deviation` <= ``tol``). There T3 makes every
    condition of T2 hold, so T2 and T4 are exact for a trivial reason. (An ``xor`` leaf of one
    pixel, for instance, is lossless.) Boolean per instance, over ``xp`` (vmappable)."""
    return lossless_deviation(s, x) <= tol


def all_gates_open(s: Any, x: Any) -> Any:
    """True when every non-top student node is open (pre-activation > 0) on every input: the
    student is then a linear network on the support of P(x), every gate/activation decorrelation
    holds trivially, and no identity's gate ``f'`` is exercised. Boolean per instance (vmappable)."""
    T = tables_of(s)
    D = forward_backward(s, x)["D"]
    if T.top == 0:
        return xp.asarray(True)
    return xp.min(xp.stack([xp.min(D[r]) for r in range(T.top)])) > 0.5


def gates_constant(s: Any, x: Any) -> Any:
    """True when no gate varies over the inputs: each non-top node is open on every input or
    closed on every input (a dead node). The student is then linear on the support, as when
    :func:`all_gates_open` (which is the case with no dead node). Boolean per instance."""
    T = tables_of(s)
    D = forward_backward(s, x)["D"]
    if T.top == 0:
        return xp.asarray(True)
    return xp.max(xp.stack([xp.max(xp.max(D[r], axis=0) - xp.min(D[r], axis=0)) for r in range(T.top)])) < 0.5


def activations_measurable(s: Any, x: Any, tol: float = TRIVIAL_TOL) -> Any:
    """True when every student activation is (to rounding) a function of its own region's
    variable: ``Var(f_j | z_r)`` relative to ``E[f_j^2 | z_r]`` is <= ``tol`` at every non-top node.
    The forward identity is then a tautology and the update decorrelation holds trivially; on a
    lossy teacher the gradients still vary within events. Boolean per instance (vmappable)."""
    T = tables_of(s)
    net = forward_backward(s, x)
    if T.top == 0:
        return xp.asarray(True)
    devs = [_cov_dev(net["p"], net["F"][r], net["F"][r], T.zid[r], T.mz[r]) for r in range(T.top)]
    return xp.max(xp.stack(devs)) <= tol


def forward_gate_exercised(s: Any, x: Any) -> Any:
    """True when the gate of the forward identity matters: some node on a non-leaf, non-top
    region is closed on some input (the top is linear, leaves have no forward identity), so
    dropping ``f'_j`` from ``f_j = f'_j (sum_k w_jk f_k + b_j)`` changes a conditioned value."""
    T = tables_of(s)
    D = forward_backward(s, x)["D"]
    mids = [r for r in range(T.top) if not T.is_leaf(r)]
    if not mids:
        return xp.asarray(False)
    return xp.min(xp.stack([xp.min(D[r]) for r in mids])) < 0.5


# --------------------------------------------------------------------------- strategies


#: the default layouts and teachers of :func:`teacher_structures` (the first six trees, the first five presets)
BASIC_TREES = ("d2", "d3-overlap", "d4-pairs", "d4-deep", "d5-overlap", "d6-uneven")
BASIC_TEACHERS = ("lossless", "label_top", "xor_leaves", "xor_mid", "xor_all")


def teacher_structures(trees: Any = None, teachers: Any = None, n: Any = (1, 2)) -> st.SearchStrategy:
    """Hypothesis strategy for a structure: a named layout (a key of :data:`LAYOUTS`: a tree or a
    DAG) or explicit ones, a teacher preset and the number ``n`` of student nodes per non-top
    region; by default :data:`BASIC_TREES` x :data:`BASIC_TEACHERS` x {1, 2}. Importable for users'
    own tests. Values are drawn in the order given (Hypothesis's simplest draw is the first)."""
    trees = list(BASIC_TREES) if trees is None else list(trees)
    teachers = list(BASIC_TEACHERS) if teachers is None else list(teachers)
    tree_values = [LAYOUTS[t] if isinstance(t, str) else t for t in trees]
    return st.fixed_dictionaries({
        "tree": st.sampled_from(tree_values),
        "teacher": st.sampled_from(teachers),
        "n": st.sampled_from(list(n)),
    })


def structure(tree: Any, teacher: str = "lossless", n: int = 2):
    """A :class:`verify.Structure` for a named or explicit tree."""
    from verify.values import Structure

    return Structure({"tree": LAYOUTS[tree] if isinstance(tree, str) else tree, "teacher": teacher, "n": n})
