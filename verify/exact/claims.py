"""Explicit-size SymPy claims of Patel et al.'s one-layer results (P1-P3), for :func:`verify.exact.decide`.

Each builder takes the sizes and returns ``(claim, premises)``: the claim written out in full at
that size, with every max over latent variables enumerated (nothing of the theorem's own argument,
"push the max to the right", is used), and the theorem's enforced assumptions as premises.
Atoms are ``IndexedBase`` entries with explicit integer indices (``z[0]``, ``v[3]``).
"""

from __future__ import annotations

import itertools
from typing import Callable, Sequence

import sympy as sp

Claim = tuple[sp.Basic, list[sp.Basic]]
Pool = Callable[[Sequence[sp.Expr]], sp.Expr]


def _max(args: Sequence[sp.Expr]) -> sp.Expr:
    # evaluate=False: SymPy's Max simplification compares arguments pairwise (slow for 2^D terms);
    # the solver needs no simplification
    # (identical terms, e.g. switch settings that select the same entries, are listed once)
    args = list(dict.fromkeys(args))
    return sp.Max(*args, evaluate=False) if len(args) > 1 else args[0]


def _relu(e: sp.Expr) -> sp.Expr:
    return sp.Max(e, 0)


def max_pool(w: Sequence[sp.Expr]) -> sp.Expr:
    return _max(list(w))


def mean_pool(w: Sequence[sp.Expr]) -> sp.Expr:
    return sp.Add(*w) / len(w)


def switch_relu(D: int, product: bool = False) -> Claim:
    """P1: ``max_{a in {0,1}^D} sum_i a_i c_i = sum_i ReLU(c_i)``, with ``c_i = z_i u_i`` when
    ``product`` (then the claim is non-linear in the atoms)."""
    if product:
        z, u = sp.IndexedBase("z"), sp.IndexedBase("u")
        c = [z[i] * u[i] for i in range(D)]
    else:
        cb = sp.IndexedBase("c")
        c = [cb[i] for i in range(D)]
    lhs = _max([sp.Add(*[ai * ci for ai, ci in zip(a, c)]) for a in itertools.product([0, 1], repeat=D)])
    return sp.Eq(lhs, sp.Add(*[_relu(ci) for ci in c])), []


def _positions(K: int, P: int, stride: int) -> int:
    return stride * (K - 1) + P


def translation_maxpool(K: int, P: int, stride: int, pool: Pool = max_pool, nonneg: bool = True) -> Claim:
    """P2: for z >= 0 (a premise when ``nonneg``), ``max over independent t in {0..P-1}^K of
    sum_j z_j v[stride*j + t_j] = sum_j z_j pool(window_j)``; windows overlap when stride < P."""
    z, v = sp.IndexedBase("z"), sp.IndexedBase("v")
    lhs = _max([sp.Add(*[z[j] * v[stride * j + t[j]] for j in range(K)])
                for t in itertools.product(range(P), repeat=K)])
    rhs = sp.Add(*[z[j] * pool([v[stride * j + tau] for tau in range(P)]) for j in range(K)])
    return sp.Eq(lhs, rhs), [z[j] >= 0 for j in range(K)] if nonneg else []


def global_shift_maxpool(K: int, P: int) -> Claim:
    """The stated non-theorem: one shift t shared by all K non-overlapping windows,
    ``max_t sum_j z_j v[P j + t] = sum_j z_j max_tau v[P j + tau]`` for z >= 0 (false for K, P >= 2)."""
    z, v = sp.IndexedBase("z"), sp.IndexedBase("v")
    lhs = _max([sp.Add(*[z[j] * v[P * j + t] for j in range(K)]) for t in range(P)])
    rhs = sp.Add(*[z[j] * _max([v[P * j + tau] for tau in range(P)]) for j in range(K)])
    return sp.Eq(lhs, rhs), [z[j] >= 0 for j in range(K)]


def maxpool_relu_commute(K: int, P: int, stride: int) -> Claim:
    """``MaxPool(ReLU(v)) = ReLU(MaxPool(v))`` window by window (K windows of P, given stride)."""
    v = sp.IndexedBase("v")
    eqs = []
    for j in range(K):
        w = [v[stride * j + tau] for tau in range(P)]
        eqs.append(sp.Eq(_max([_relu(x) for x in w]), _relu(_max(w))))
    return sp.And(*eqs), []


def signed_render_layer(K: int, P: int, stride: int) -> Claim:
    """P3, signed: with switches ``a in {0,1}^n`` indexed by position (shared by overlapping
    windows) and independent translations ``t in {0..P-1}^K``,
    ``max_{a, t} sum_j z_j a[s j + t_j] u[s j + t_j] = sum_j |z_j| max_tau ReLU(sgn(z_j) u[s j + tau])``.

    ``u`` stands for ``Gamma^T I``, which takes every value in R^n as Gamma and I vary, so the claim
    over u is the claim over (Gamma, I). True for non-overlapping windows (stride = P); refuted when
    windows overlap and share switches (e.g. K = 3, P = 2, stride 1).
    """
    z, u = sp.IndexedBase("z"), sp.IndexedBase("u")
    n = _positions(K, P, stride)
    terms = []
    for a in itertools.product([0, 1], repeat=n):
        for t in itertools.product(range(P), repeat=K):
            terms.append(sp.Add(*[z[j] * a[stride * j + t[j]] * u[stride * j + t[j]] for j in range(K)]))
    rhs = sp.Add(*[sp.Abs(z[j]) * _max([_relu(sp.sign(z[j]) * u[stride * j + tau]) for tau in range(P)])
                   for j in range(K)])
    return sp.Eq(_max(terms), rhs), []
