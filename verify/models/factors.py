"""Binary factors, Kronecker structure and the tests "is this matrix disentangled / separable".

A region with n binary factors has m = 2^n events, ordered lexicographically with factor 0 the
most significant bit, so ``kron_all([v_0, ..., v_{n-1}])`` is the vector with entry
``prod_i v_i[bit_i(a)]``. A *partition* is a tuple of blocks S_j (tuples of beta's factors), one
per alpha factor j; blocks need not be contiguous. A transition P_ab (2^n_alpha x 2^n_beta) is
*factorised* over it when P_ab[a, b] = prod_j P_{S_j}[a_j, b|S_j], with b|S_j the sub-event of b
on S_j (lexicographic within S_j); for contiguous ordered blocks this is the Kronecker product
of the factors. :func:`transition` builds one from per-factor logits (row-softmax), so shrinking
a counterexample never breaks row-stochasticity. Every function here is written against ``xp``
and runs under ``jit(vmap)`` and at 50 digits.

Tests of structure, with their tolerances
-----------------------------------------
* :func:`disentanglement_deviation` / :func:`is_disentangled`: column j of H (events x nodes)
  is disentangled when it equals its uniform average over every factor but its own, broadcast
  back. Tolerance ``DIS_TOL``: max deviation <= 1e-9 * max|H|. A column assembled from Kronecker
  factors in float64 is constant across the other factors up to the rounding of the <= 16-term
  sums that formed it (<~ 1e-14 relative); an entangled column built from generic values
  deviates by O(0.1-1) relative, so 1e-9 separates the two by > 4 decades either way.
* :func:`separability_deviation` / :func:`is_separable`: W_ba (n_beta x n_alpha) is separable
  when W[k, j] = 0 for every beta factor k outside S_j. Tolerance ``SEP_TOL``: |W[k, j]| <=
  1e-12 * max|W| (the zeros are exact by construction; a computed update that should vanish
  there is checked against its own scale by the theorem that computes it).
* :func:`factorisation_deviation`: max |P - product of P's factor marginals|, 0 iff P factorises.
"""

from __future__ import annotations

import functools
import itertools

import numpy as np
from hypothesis import strategies as st

from verify.backends import xp

DIS_TOL = 1e-9
SEP_TOL = 1e-12


@functools.lru_cache(maxsize=None)
def bits(n: int) -> np.ndarray:
    """(2^n, n) 0/1 table: row a = the factor values of event a, factor 0 most significant."""
    return np.array(list(itertools.product([0, 1], repeat=n)), dtype=np.int64).reshape(-1, n)


@functools.lru_cache(maxsize=None)
def sub_index(n: int, S: tuple) -> np.ndarray:
    """For each event of n factors, its sub-event on the factors S (lexicographic within S)."""
    B = bits(n)
    out = np.zeros(2**n, dtype=np.int64)
    for t, k in enumerate(S):
        out = out + B[:, k] * 2 ** (len(S) - 1 - t)
    return out


@functools.lru_cache(maxsize=None)
def averaging_matrices(n: int, S: tuple) -> tuple[np.ndarray, np.ndarray]:
    """For n factors and a subset S of them: A (2^|S| x 2^n) averages uniformly over the events
    with a given sub-event on S; B (2^n x 2^|S|) broadcasts back. B @ A projects onto functions of S."""
    idx = sub_index(n, S)
    B = np.eye(2 ** len(S))[idx]
    A = B.T / B.sum(axis=0)[:, None]
    return A, B


def n_beta_of(partition) -> int:
    """How many beta factors a partition covers."""
    return sum(len(S) for S in partition)


@functools.lru_cache(maxsize=None)
def block_mask(partition: tuple) -> np.ndarray:
    """(n_beta x n_alpha) 0/1: mask[k, j] = 1 iff beta factor k is in S_j."""
    nb = n_beta_of(partition)
    M = np.zeros((nb, len(partition)))
    for j, S in enumerate(partition):
        M[list(S), j] = 1.0
    return M


def softmax_rows(L):
    """Row-wise softmax (row-stochastic from unconstrained logits)."""
    Z = L - xp.max(L, axis=-1, keepdims=True)
    E = xp.exp(Z)
    return E / xp.sum(E, axis=-1, keepdims=True)


def kron_all(vs):
    """v_0 (x) v_1 (x) ... in lexicographic order (v_0 most significant)."""
    out = vs[0]
    for v in vs[1:]:
        out = xp.reshape(out[:, None] * v[None, :], (-1,))
    return out


# ---------------------------------------------------------------------------- structure tests


def disentanglement_deviation(H, groups=None):
    """H (m x n) with m = 2^N events of N factors; column j should depend only on the factors
    ``groups[j]`` (default: factor j alone, N = n). Returns H - (projection of each column onto
    functions of its group), over ``xp``."""
    m, n = H.shape
    N = int(round(np.log2(m)))
    groups = groups if groups is not None else tuple((j,) for j in range(n))
    cols = []
    for j in range(n):
        A, B = averaging_matrices(N, tuple(groups[j]))
        h = H[:, j]
        cols.append(h - xp.asarray(B) @ (xp.asarray(A) @ h))
    return xp.stack(cols, axis=1)


def is_disentangled(H, groups=None, tol: float = DIS_TOL) -> bool:
    """NumPy test: max |deviation| <= tol * max|H| (see the module docstring for why 1e-9)."""
    H = np.asarray(H, dtype=float)
    dev = np.asarray(disentanglement_deviation(H, groups))
    return bool(np.max(np.abs(dev), initial=0.0) <= tol * np.max(np.abs(H), initial=0.0))


def separability_deviation(W, partition):
    """The entries of W (n_beta x n_alpha) that separability requires to be 0."""
    return W * (1.0 - xp.asarray(block_mask(partition)))


def is_separable(W, partition, tol: float = SEP_TOL) -> bool:
    """NumPy test: every entry outside the blocks is <= tol * max|W| (module docstring for why 1e-12)."""
    W = np.asarray(W, dtype=float)
    off = np.abs(np.asarray(separability_deviation(W, partition)))
    return bool(np.max(off, initial=0.0) <= tol * np.max(np.abs(W), initial=0.0))


# ---------------------------------------------------------------------------- factorised P


def transition(partition, Ls, noise=None, mix=0.0, order=None):
    """P_ab (2^n_alpha x 2^n_beta): row-softmax of sum_j L_j[a_j, b|S_j] (+ mix * noise).

    With mix = 0 this is prod_j softmax(L_j)[a_j, b|S_j], the factorised transition (the
    normaliser factorises because b <-> (b|S_1, ..., b|S_n) is a bijection). ``order`` permutes
    which alpha factor reads which block (a mutant: Kronecker factors swapped)."""
    na, nb = len(partition), n_beta_of(partition)
    Ba = bits(na)
    order = order or tuple(range(na))
    logits = 0.0
    for j, S in enumerate(partition):
        ai = Ba[:, order[j]]
        logits = logits + Ls[j][ai][:, sub_index(nb, S)]
    if noise is not None:
        logits = logits + mix * noise
    return softmax_rows(logits)


def factor_marginals(P, partition):
    """Q_j[a_j, c] = uniform average over alpha events with a_j of P(b|S_j = c | a)."""
    na, nb = len(partition), n_beta_of(partition)
    out = []
    for j, S in enumerate(partition):
        onehot = xp.asarray(np.eye(2 ** len(S))[sub_index(nb, S)])
        A, _ = averaging_matrices(na, (j,))
        out.append(xp.asarray(A) @ (P @ onehot))
    return out


def factorisation_deviation(P, partition):
    """max |P - prod_j Q_j[a_j, b|S_j]|: 0 iff P factorises over the partition (module docstring)."""
    na, nb = len(partition), n_beta_of(partition)
    Q = factor_marginals(P, partition)
    Ba = bits(na)
    rec = 1.0
    for j, S in enumerate(partition):
        rec = rec * Q[j][Ba[:, j]][:, sub_index(nb, S)]
    return xp.max(xp.abs(P - rec))


def disentangled_matrix(fvals, n):
    """F (2^n x n) with column k = 1 (x) ... (x) f_k (x) ... (x) 1, f_k = fvals[k] (2 values)."""
    B = bits(n)
    return xp.stack([fvals[k][B[:, k]] for k in range(n)], axis=1)


def local_event_matrix(fvals, S):
    """F restricted to the factors S: (2^|S| x |S|), column t = f_{S[t]} on S's sub-events."""
    B = bits(len(S))
    return xp.stack([fvals[k][B[:, t]] for t, k in enumerate(S)], axis=1)


# ---------------------------------------------------------------------------- strategies


@st.composite
def partitions(draw, max_beta: int = 4, max_alpha: int = 3, min_alpha: int = 2):
    """A random partition of beta's factors into ordered blocks, one per alpha factor: n_beta in
    [2, max_beta], n_alpha in [min_alpha, min(n_beta, max_alpha)], blocks from a random permutation
    cut at random points (so blocks may be non-contiguous and in any order). Shrinks towards two
    singleton blocks in order."""
    nb = draw(st.integers(max(2, min_alpha), max_beta))
    na = draw(st.integers(min_alpha, min(nb, max_alpha)))
    order = draw(st.permutations(range(nb)))
    cuts = sorted(draw(st.sets(st.integers(1, nb - 1), min_size=na - 1, max_size=na - 1)))
    return tuple(tuple(sorted(order[i:j])) for i, j in zip([0, *cuts], [*cuts, nb]))


# ---------------------------------------------------------------------------- SymPy counterparts
#
# The symbolic claims of the T8/T9 family are written over the instance's own arrays (logits L_j,
# factor values fvals, raw weights Wraw, ...: IndexedBases named like the arrays, so the engine binds
# them by name), at an explicit partition. Each function mirrors its ``xp`` twin above entry by entry
# (same shapes, same order of events), so a claim built from them is the statement the property
# computes. Transition factors are row-softmaxes of their logits, as in :func:`transition`.


def blocks_code(partition) -> int:
    """The partition as one integer (a structure field, so a derivation can name its size): the
    k-th decimal digit (from the left) is 1 + the index j of the block S_j holding beta factor k.
    ((0, 2), (1,)) -> 121; ((0,), (1,)) -> 12; ((1,), (0,)) -> 21."""
    owner = {k: j for j, S in enumerate(partition) for k in S}
    return int("".join(str(owner[k] + 1) for k in range(n_beta_of(partition))))


def partition_of_code(code: int) -> tuple:
    """The inverse of :func:`blocks_code`."""
    digits = [int(c) - 1 for c in str(code)]
    return tuple(tuple(k for k, j in enumerate(digits) if j == b) for b in range(max(digits) + 1))


def sym_softmax_rows(L, rows: int, cols: int):
    """SymPy: the row-softmax of the logits ``L`` (an IndexedBase, rows x cols), entry by entry."""
    import sympy as sp

    return sp.Matrix(rows, cols, lambda r, c: sp.exp(L[r, c]) / sp.Add(*[sp.exp(L[r, t]) for t in range(cols)]))


def sym_transition(partition, Ls, order=None):
    """SymPy: the factorised P_ab (2^n_alpha x 2^n_beta), P[a, b] = prod_j softmax(L_j)[a_j, b|S_j]
    (the ``mix = 0`` case of :func:`transition`; ``order`` as there)."""
    import sympy as sp

    na, nb = len(partition), n_beta_of(partition)
    order = order or tuple(range(na))
    Ba = bits(na)
    facs = [sym_softmax_rows(Ls[j], 2, 2 ** len(S)) for j, S in enumerate(partition)]
    subs = [sub_index(nb, S) for S in partition]
    return sp.Matrix(2**na, 2**nb, lambda a, b: sp.Mul(*[facs[j][int(Ba[a, order[j]]), int(subs[j][b])]
                                                        for j in range(na)]))


def sym_kron_all(vs):
    """SymPy: v_0 (x) v_1 (x) ... as a column (v_0 most significant), like :func:`kron_all`."""
    import sympy as sp

    n = len(vs)
    B = bits(n)
    return sp.Matrix([sp.Mul(*[vs[i][int(B[a, i])] for i in range(n)]) for a in range(2**n)])


def sym_disentangled_matrix(fvals, n: int):
    """SymPy: :func:`disentangled_matrix` with ``fvals`` an IndexedBase (n x 2)."""
    import sympy as sp

    B = bits(n)
    return sp.Matrix(2**n, n, lambda b, k: fvals[k, int(B[b, k])])


def sym_local_event_matrix(fvals, S):
    """SymPy: :func:`local_event_matrix` (2^|S| x |S|)."""
    import sympy as sp

    B = bits(len(S))
    return sp.Matrix(2 ** len(S), len(S), lambda e, t: fvals[S[t], int(B[e, t])])


def sym_deviation(H, groups=None):
    """SymPy: :func:`disentanglement_deviation` of the explicit matrix H (events x nodes): each
    entry minus the uniform average of its column over the events that agree with it on the
    column's group of factors."""
    import sympy as sp

    m, n = H.shape
    N = int(round(np.log2(m)))
    groups = groups if groups is not None else tuple((j,) for j in range(n))
    out = sp.zeros(m, n)
    for j in range(n):
        idx = sub_index(N, tuple(groups[j]))
        for e in range(m):
            same = [f for f in range(m) if idx[f] == idx[e]]
            out[e, j] = H[e, j] - sp.Add(*[H[f, j] for f in same]) / len(same)
    return sp.ImmutableMatrix(out)
