"""Convex-hull vertices and rank, in plain ``xp`` arithmetic (no LAPACK).

The ``xp`` functions here run under ``jit(vmap)`` and at 50 digits, where a LAPACK call
(``svd``, ``pinv``, ``lstsq``) cannot: NumPy over mpmath numbers has none. :func:`vertices` is
the NumPy/SciPy reference by linear programming, for tests and notebooks.

* :func:`vertices` (LP, scipy HiGHS): row i of M is a vertex of the convex hull of M's rows iff
  its L1 distance to the hull of the other rows exceeds ``HULL_TOL * (1 + max|M|)``, 1e-9; a
  duplicated row is therefore not a vertex (it lies in the hull of its copy).
* :func:`vertex_mask` (``xp``): the same decision without an LP, by Caratheodory: enumerate the
  subsets of the other rows and solve for barycentric coordinates by least squares (normal
  equations, unrolled elimination). Exponential in the number of rows: meant for <= 6.
* :func:`row_rank`, :func:`column_projector` (``xp``): modified Gram-Schmidt; a vector within
  relative distance ``RANK_REL`` = 1e-9 of the span of those before it counts as dependent.
"""

from __future__ import annotations

import functools
import itertools

import numpy as np

from verify.backends import xp

HULL_TOL = 1e-9
RANK_REL = 1e-9


def vertices(M, tol: float = HULL_TOL) -> list[int]:
    """Indices of the rows of M that are vertices of the convex hull of M's rows, by linear
    programming (scipy HiGHS): row i is a vertex iff min_{lambda in simplex} ||M_{-i}^T lambda - M_i||_1
    > tol * (1 + max|M|). Duplicated rows are not vertices."""
    from scipy.optimize import linprog

    M = np.asarray(M, dtype=float)
    m, d = M.shape
    thr = tol * (1.0 + np.max(np.abs(M), initial=0.0))
    out = []
    for i in range(m):
        others = np.delete(M, i, axis=0)
        k = others.shape[0]
        if k == 0:
            out.append(i)
            continue
        # variables: lambda (k), s (d) slack for |.|; minimise sum s
        c = np.concatenate([np.zeros(k), np.ones(d)])
        A_ub = np.block([[others.T, -np.eye(d)], [-others.T, -np.eye(d)]])
        b_ub = np.concatenate([M[i], -M[i]])
        A_eq = np.concatenate([np.ones(k), np.zeros(d)])[None, :]
        res = linprog(c, A_ub=A_ub, b_ub=b_ub, A_eq=A_eq, b_eq=[1.0], bounds=[(0, None)] * (k + d), method="highs")
        if not res.success or res.fun > thr:
            out.append(i)
    return out


def is_all_vert(M, tol: float = HULL_TOL) -> bool:
    return len(vertices(M, tol)) == np.asarray(M).shape[0]


@functools.lru_cache(maxsize=None)
def _hull_combos(m: int, k: int) -> tuple[np.ndarray, np.ndarray]:
    """All (row i, subset T of the other rows with |T| = k), as index arrays."""
    I, T = [], []
    for i in range(m):
        for sub in itertools.combinations([r for r in range(m) if r != i], k):
            I.append(i)
            T.append(sub)
    return np.array(I, dtype=np.int64), np.array(T, dtype=np.int64).reshape(len(I), k)


def _spd_solve(G, b):
    """Solve G mu = b for a batch of small symmetric positive semi-definite G (c, n, n) by unrolled
    Gaussian elimination (no LAPACK call: plain xp arithmetic). A singular G (an affinely dependent
    subset) gives non-finite or junk mu, which the residual check in vertex_mask rejects; Caratheodory
    guarantees an affinely independent subset is also tried."""
    n = G.shape[-1]
    A = [[G[:, i, j] for j in range(n)] for i in range(n)]
    r = [b[:, i] for i in range(n)]
    for i in range(n):
        piv = A[i][i]
        safe = xp.where(xp.abs(piv) > 1e-300, piv, 1.0)
        for k in range(i + 1, n):
            f = A[k][i] / safe
            A[k] = [A[k][j] - f * A[i][j] for j in range(n)]
            r[k] = r[k] - f * r[i]
    mu = [None] * n
    for i in reversed(range(n)):
        acc = r[i] - sum((A[i][j] * mu[j] for j in range(i + 1, n)), 0.0 * r[i])
        piv = A[i][i]
        mu[i] = xp.where(xp.abs(piv) > 1e-300, acc / xp.where(xp.abs(piv) > 1e-300, piv, 1.0), 0.0)
    return xp.stack(mu, axis=1)


def vertex_mask(M, tol: float = HULL_TOL):
    """Boolean per row of M (over ``xp``, jit/vmap-able): is it a vertex of the convex hull of
    the rows? LP-free: a row is not a vertex iff it is a convex combination of some affinely
    independent subset of the other rows (Caratheodory); every subset is tried, barycentric
    coordinates by least squares (normal equations, unrolled elimination), accepted when the residual is <= tol * (1 + max|M|) and
    every coordinate is >= -tol."""
    m, d = M.shape
    thr = tol * (1.0 + xp.max(xp.abs(M)))
    inside = xp.zeros((m,), dtype=bool)
    for k in range(1, m):
        I, T = _hull_combos(m, k)
        base = M[T[:, 0]]  # (c, d)
        e = M[I] - base
        if k == 1:
            ok = xp.sqrt(xp.sum(e * e, axis=1)) <= thr
        else:
            D = xp.transpose(M[T[:, 1:]] - base[:, None, :], (0, 2, 1))  # (c, d, k-1)
            mu = _spd_solve(xp.einsum("cij,cik->cjk", D, D), xp.einsum("cij,ci->cj", D, e))
            r = xp.einsum("cij,cj->ci", D, mu) - e
            lam0 = 1.0 - xp.sum(mu, axis=1)
            ok = (xp.sqrt(xp.sum(r * r, axis=1)) <= thr) & (xp.min(mu, axis=1) >= -tol) & (lam0 >= -tol)
        ind = xp.asarray(np.eye(m)[I].T)  # (m, c)
        inside = inside | ((ind @ ok.astype(M.dtype)) > 0)
    return ~inside & xp.all(xp.isfinite(M), axis=1)


def _orthonormalise(vectors, rel):
    """Modified Gram-Schmidt with re-orthogonalisation over a list of vectors (plain ``xp``
    arithmetic: runs under jit(vmap) and at 50 digits; no LAPACK). A vector whose remainder after
    removing the span of those before it is <= rel * (largest vector norm) counts as dependent:
    its basis vector is 0 and its flag 0.0. Distances are computed directly, so their rounding is
    ~1e-16 relative and rel = 1e-9 separates dependent from independent by 7 decades. (Eliminating
    on the Gram matrix instead squares them: its pivots carry ~1e-16 absolute noise, a distance
    resolution of only ~1e-8.)"""
    thr = rel * xp.max(xp.stack([xp.sqrt(xp.sum(v * v)) for v in vectors]))
    qs, flags = [], []
    for v in vectors:
        for _ in range(2):  # twice is enough (Giraud, Langou, Rozloznik 2005)
            for q in qs:
                v = v - xp.sum(q * v) * q
        nv = xp.sqrt(xp.sum(v * v))
        keep = nv > thr
        qs.append(xp.where(keep, v / xp.where(keep, nv, 1.0), 0.0))
        flags.append(xp.where(keep, 1.0, 0.0))
    return qs, flags


def row_rank(M, rel=RANK_REL):
    """Rank of M: the number of rows at relative distance > rel from the span of the rows before them."""
    return sum(_orthonormalise([M[i] for i in range(M.shape[0])], rel)[1])


def column_projector(A, rel=RANK_REL):
    """The orthogonal projector A A^+ onto the column space of A (from the orthonormal basis of its
    columns; A^+ itself is never formed)."""
    qs, _ = _orthonormalise([A[:, j] for j in range(A.shape[1])], rel)
    Q = xp.stack(qs, axis=1)
    return Q @ xp.transpose(Q)


def hull_nearest(M, tol: float = HULL_TOL):
    """For each row i of M (over ``xp``, jit/vmap-able, no LP), the nearest point q_i of the convex
    hull of the OTHER rows, and its squared distance. LP-free, like :func:`vertex_mask`: the nearest
    point lies in the relative interior of a face spanned by an affinely independent subset T of
    the other rows (Caratheodory), where it is the orthogonal projection onto aff(T) with
    barycentric coordinates >= 0. Every subset is tried; a candidate counts when its coordinates
    are >= -tol, so every counted candidate is (to tol) a point of the hull and the smallest
    distance among them is the distance to the hull (a singular subset's junk solution is a hull
    point too, never closer than the nearest one). Ties (the same nearest point found from several
    faces) are averaged. Returns (Q (m x d), dist2 (m,))."""
    m, d = M.shape
    cands, dists, owners = [], [], []
    for k in range(1, m):
        I, T = _hull_combos(m, k)
        base = M[T[:, 0]]
        e = M[I] - base
        if k == 1:
            q = base
            ok = xp.ones((len(I),), dtype=bool)
        else:
            D = xp.transpose(M[T[:, 1:]] - base[:, None, :], (0, 2, 1))  # (c, d, k-1)
            mu = _spd_solve(xp.einsum("cij,cik->cjk", D, D), xp.einsum("cij,ci->cj", D, e))
            q = base + xp.einsum("cij,cj->ci", D, mu)
            ok = (xp.min(mu, axis=1) >= -tol) & (1.0 - xp.sum(mu, axis=1) >= -tol) & xp.all(xp.isfinite(q), axis=1)
        r = M[I] - q
        cands.append(xp.where(ok[:, None], q, 0.0))
        dists.append(xp.where(ok, xp.sum(r * r, axis=1), xp.inf))
        owners.append(I)
    Qc, dc = xp.concatenate(cands, axis=0), xp.concatenate(dists, axis=0)
    own = xp.asarray(np.eye(m)[np.concatenate(owners)].T)  # (m, c): candidate c belongs to row own
    big = xp.where(own > 0, dc[None, :], xp.inf)
    best = xp.min(big, axis=1)  # (m,)
    sel = (own > 0) & (big <= best[:, None] * (1.0 + 1e-9) + 1e-300)
    w = sel.astype(M.dtype)
    Q = (w @ Qc) / xp.maximum(xp.sum(w, axis=1), 1.0)[:, None]
    return Q, best
