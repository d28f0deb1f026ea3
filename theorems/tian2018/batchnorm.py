"""Batch Norm's backward pass is a projection (Tian 2018, Theorem 5; formalisation T5).

f_bn = c1 (f - mu 1)/sigma + c0 1 with the biased (population) variance and eps = 0. Then
dL/df = (c1/sigma) P_perp dL/df_bn, P_perp = I - (1 1^T + fhat fhat^T)/N, the orthogonal
projector onto the complement of span{1, f}. Reformulated with event probabilities p
(Lambda = diag p): the per-event gradient (dL/df_i)/p_i equals (c1/sigma) Q g_bn with
Q = I - 1 1^T Lambda - fhat fhat^T Lambda, a projector self-adjoint under <a, b> = a^T Lambda b.
Consequence for a linear layer followed by BN: w^T grad_w L = 0 (scale invariance), so ||w||^2
is constant under gradient flow and grows by exactly eta^2 ||grad||^2 under a step of size eta.

The module follows the paper: the BN pieces every theorem shares, then Theorem 5 (batch form),
its reformulation with event probabilities, and the row-energy consequence.

What is proved, and what is only tested
---------------------------------------
Every derivation states one component of the property as a claim over the instance's own names
(``f``, ``g``, ``c1``, ``c0``; ``q`` for the event probabilities) and reaches it by links that SymPy
checks entry by entry, at explicit batch sizes (``Derivation.for_sizes``): the engine's scope is
exactly those sizes. Writing U = [1, fhat] (N x 2) and V = U^T Lambda (Lambda = I/N for the batch),
the claimed operator is I - U V; the chains use the Gram relation V U = I_2 (p^T 1 = 1,
p^T fhat = 0, fhat^T Lambda fhat = 1), which each link checks from the definitions of mu and sigma.

* Theorem 5 (batch), at N in {2, 3, 4}: ``three_term``, the gradient formula (the claim's left side is
  SymPy's dL/df of L = sum g_i f_bn_i; the chain goes through the explicit Jacobian J = d f_bn / d f,
  its closed form (c1/sigma)(I - 1 1^T/N - fhat fhat^T/N) by the quotient rule, and J^T = J);
  ``centred`` and ``orthogonal_to_f`` (1^T G = 0 and f^T G = 0 for the chain-rule gradient G);
  ``kills_1``, ``kills_f``, ``self_adjoint`` and ``rank_n_minus_2`` (the trace is N - 2: that a
  projector's rank is its trace is not checked here); ``idempotent`` at N in {2, 3} only (SymPy
  needs ~40 s at N = 4).
* The reformulation with event probabilities, at N in {2, 3}: ``kills_1``, ``rank_n_minus_2``,
  ``self_adjoint`` (Lambda Q symmetric) and ``centred`` (1^T Lambda G = 0). The claim writes p on
  the simplex by its first N - 1 coordinates (p_N = 1 - q_1 - ... - q_{N-1}); the sampler draws q
  as a probability vector, so the claim's p is the property's q / sum q on every drawn instance.
  The weighted gradient formula (``three_term``), ``idempotent``, ``kills_f`` and
  ``orthogonal_to_f`` are tested only: their SymPy checks take minutes (70 s for the gradient at
  N = 3 alone).
* The row-energy consequence has no derivation: it is tested only. (Its old derivation compared
  0 == 0 after substituting the conclusion; a chain from the property's sides, through the
  gradient of a loss over X W^T, was out of SymPy's reach at N = 2.)

Mutants of the batch form state their wrong gradient claim at N = 3 (``wrong_gradient_claim``):
the engine refutes each at an exact rational point, and the crosscheck ties that claim to the
mutant's property.

Tested only, everywhere: the ``autodiff`` components (the same claims against ``jax.vjp`` through a
real BN forward, float64 only), ``defined`` (the property's guard for sigma = 0), and every size
outside a derivation's scope (the search draws N = 2..6). Note that at N = 2 the projector is 0
(span{1, f} is all of R^2), so the N = 2 members prove that the gradient vanishes there; N = 3, 4
are the informative sizes. Nothing is derived for symbolic N.

Numerics: the property differentiates a real BN forward with ``jax.vjp`` (float64) and also runs
the classic three-term backward of Ioffe & Szegedy (2015) written by hand over ``xp``. Under the
50-digit backend ``jax.vjp`` cannot run, so there the autodiff component is left out and the
hand-written backward (itself checked against autodiff in float64) carries the claim.
"""

from __future__ import annotations

import functools
from typing import Any, NamedTuple

import sympy as sp
from hypothesis import strategies as st

from theorems.sources import TIAN
from verify import Algebra, Assumption, Claim, Derivation, Mutant, Theorem, Tolerance, eq, residual, xp

CONVENTIONS = (
    "Biased (population) variance sigma^2 = p^T (f - mu)^2 (= 1/N sum for the batch form); "
    "BN epsilon = 0 in the claim. The drawn BN forward may use eps > 0 or the unbiased variance "
    "(N/(N-1), or 1/(1 - sum p^2) with weights): those instances violate an assumption. "
    "Where sigma = 0 (constant f) the claim is undefined: the property then reports a failing "
    "'defined' component instead of NaN."
)
SOURCE = TIAN.with_conventions(CONVENTIONS)

# Rounding. Every residual is compared with its own scale: the absolute size of the terms
# that are summed (|c1|/sigma (|g| + p^T|g| + |fhat| p^T(|fhat||g|)) for a gradient entry,
# |P||P| for P^2, ...) times the conditioning kappa = 1 + max|f|/sigma of the centring
# f - mu, which loses log10(kappa) digits (inputs with variance tiny relative to the mean).
# With that scale the error is a small multiple of N eps; N <= 6 gives <= ~1e-14; rtol = 1e-11
# leaves a margin of ~1000 (measured worst ratio on true claims: see tests/test_tian2018_batchnorm.py).
TOLERANCE = Tolerance(
    atol=0.0, rtol=1e-11,
    reason="sums of <= 6 terms of the given scale, after a centring that loses log10(1 + max|f|/sigma) digits "
           "(kappa is in the scale): error <= ~10 N eps * scale ~ 1e-14 * scale; rtol 1e-11 leaves ~1000x",
)

BATCH_SIZES = st.fixed_dictionaries({"N": st.integers(2, 6)})
#: the batch sizes at which the derivations are written out and checked (SymPy's time grows fast with N)
PROVED_SIZES = (2, 3, 4)


# ============================================================================= BN pieces (xp)


def _uniform(N):
    return xp.ones((N,)) / N


class BNStats(NamedTuple):
    """The statistics of one BN input f under weights p (``p = 1/N`` for the batch)."""

    mu: Any       #: p^T f
    u: Any        #: f - mu (centred)
    var: Any      #: biased variance p^T u^2
    defined: Any  #: var > 0 with a margin (sigma > 1e-9 max|f|)
    sigma: Any    #: sqrt(var) where defined, else 1 (a safe divisor)
    fhat: Any     #: u / sigma
    kappa: Any    #: conditioning 1 + max|f| / sigma of the centring


def stats(f, p) -> BNStats:
    mu = xp.sum(p * f)
    u = f - mu
    var = xp.sum(p * u * u)
    # sigma > 1e-9 max|f|: beyond that f is constant up to the rounding of mu (and kappa > 1e9)
    defined = (var > 0) & (var > (1e-9 * xp.max(xp.abs(f))) ** 2)
    sigma = xp.sqrt(xp.where(defined, var, 1.0))
    fhat = u / sigma
    kappa = 1.0 + xp.max(xp.abs(f)) / sigma
    return BNStats(mu, u, var, defined, sigma, fhat, kappa)


def _correction(p, biased):
    """Variance multiplier of the drawn forward: 1 (biased) or 1/(1 - sum p^2) (unbiased; N/(N-1) for p = 1/N)."""
    r = 1.0 - xp.sum(p * p)  # 0 only for a point mass, where the variance is 0 anyway
    return xp.where(biased > 0.5, 1.0, 1.0 / xp.where(r > 0, r, 1.0))


def three_term_backward(f, p, d, c1, eps, biased):
    """dL/df from d = dL/df_bn, by the three-term rule of Ioffe & Szegedy (2015, Algorithm 1's
    backward: d xhat, d var, d mu), written out by hand; with weights p in place of 1/N."""
    mu = xp.sum(p * f)
    u = f - mu
    k = _correction(p, biased)
    v = k * xp.sum(p * u * u) + eps
    inv = 1.0 / xp.sqrt(xp.where(v > 0, v, 1.0))
    dxhat = c1 * d
    dvar = xp.sum(dxhat * u) * (-0.5) * inv * inv * inv * k
    dmu = -xp.sum(dxhat) * inv + dvar * xp.sum(-2.0 * p * u)
    return dxhat * inv + dvar * 2.0 * p * u + dmu * p


def bn_forward(f, p, c1, c0, eps, biased):
    """A real BN forward (population or corrected variance, eps under the root)."""
    mu = xp.sum(p * f)
    u = f - mu
    k = _correction(p, biased)
    v = k * xp.sum(p * u * u) + eps
    return c1 * u / xp.sqrt(xp.where(v > 0, v, 1.0)) + c0


def bn_forward_batch(f, c1, c0, eps, biased):
    """The textbook batch forward, as JAX users write it: jnp.mean, jnp.var (ddof 0 or 1), eps
    under the root (float64 only: it is differentiated by jax.vjp)."""
    jnp = xp.jax.numpy
    v = jnp.where(biased > 0.5, jnp.var(f), jnp.var(f, ddof=1)) + eps
    return c1 * (f - jnp.mean(f)) / jnp.sqrt(jnp.where(v > 0, v, 1.0)) + c0


def autodiff_backward(f, p, d, c1, c0, eps, biased, weighted=True):
    """dL/df = J^T d by jax.vjp through a BN forward (float64 only)."""
    if weighted:
        fwd = lambda ff: bn_forward(ff, p, c1, c0, eps, biased)  # noqa: E731
    else:
        fwd = lambda ff: bn_forward_batch(ff, c1, c0, eps, biased)  # noqa: E731
    _, vjp = xp.jax.vjp(fwd, f)
    return vjp(d)[0]


def _outer(a, b):
    return a[:, None] * b[None, :]


def _combine(terms):
    """A projector given as a list of matrix terms: (their sum, the sum of their absolute values)."""
    return sum(terms[1:], terms[0]), sum([xp.abs(t) for t in terms[1:]], xp.abs(terms[0]))


def batch_projector(fhat, p, N):
    one = xp.ones((N,))
    return _combine([xp.eye(N), -_outer(one, one) / N, -_outer(fhat, fhat) / N])


def weighted_projector(fhat, p, N):
    one = xp.ones((N,))
    return _combine([xp.eye(N), -_outer(one, p), -_outer(fhat, fhat * p)])


# ============================================================================= BN at explicit N (SymPy)

# the instance's own names: the claims are evaluated on drawn instances by these names
_f, _g = sp.IndexedBase("f", real=True), sp.IndexedBase("g", real=True)
_q = sp.IndexedBase("q", positive=True)  # the event probabilities (the sampler draws q on the simplex; positive_p)
_c1, _c0 = sp.symbols("c1 c0", real=True)


class ExactBN(NamedTuple):
    """Batch Norm at an explicit size N in SymPy, over the instance's names. Weights p are 1/N
    (batch) or q / sum q; U = [1, fhat] and V = U^T Lambda, so the claimed operator is I - U V."""

    N: int
    f: sp.Matrix
    g: sp.Matrix
    p: sp.Matrix
    Lam: sp.Matrix
    one: sp.Matrix
    mu: sp.Expr
    sigma: sp.Expr
    fhat: sp.Matrix
    U: sp.Matrix
    V: sp.Matrix
    P: sp.Matrix          #: I - U V: P_perp (batch) or Q (weighted)
    f_bn: sp.Matrix       #: c1 fhat + c0 1
    gradient: sp.Matrix   #: dL/df_k (batch) or (dL/df_k)/p_k (weighted), as unevaluated derivatives
    back: sp.Matrix       #: the same by the chain rule through the explicit Jacobian d f_bn / d f


@functools.lru_cache(maxsize=None)
def exact_bn(N: int, weighted: bool) -> ExactBN:
    f = sp.Matrix([_f[i] for i in range(N)])
    g = sp.Matrix([_g[i] for i in range(N)])
    one = sp.ones(N, 1)
    if weighted:  # the simplex by its first N - 1 coordinates: p = (q_1, ..., q_{N-1}, 1 - q_1 - ... - q_{N-1})
        head = [_q[i] for i in range(N - 1)]
        p = sp.Matrix(head + [1 - sum(head)])
    else:
        p = sp.Matrix([sp.Rational(1, N)] * N)
    Lam = sp.Matrix(N, N, lambda i, j: p[i] if i == j else 0)
    mu = (p.T * f)[0]
    u = f - mu * one
    sigma = sp.sqrt(sum(p[i] * u[i] ** 2 for i in range(N)))
    fhat = u / sigma
    U = sp.Matrix.hstack(one, fhat)
    V = U.T * Lam
    P = sp.eye(N) - U * V
    f_bn = _c1 * fhat + _c0 * one
    # L = sum_i w_i g_i f_bn_i with w_i = 1 (batch) or p_i (weighted: g_i = l_i'(f_bn_i) per event)
    d = Lam * g if weighted else g
    loss = sum(d[i] * f_bn[i] for i in range(N))
    per = (lambda v, k: v / p[k]) if weighted else (lambda v, k: v)
    gradient = sp.Matrix([per(sp.Derivative(loss, _f[k]), k) for k in range(N)])
    J = sp.Matrix(N, N, lambda i, k: sp.diff(f_bn[i], _f[k]))
    back = J.T * d
    back = sp.Matrix([per(back[k], k) for k in range(N)])
    return ExactBN(N, f, g, p, Lam, one, mu, sigma, fhat, U, V, P, f_bn, gradient, back)


_GRAM = "V U = I_2, i.e. p^T 1 = 1, p^T fhat = 0, fhat^T Lambda fhat = 1 (the definitions of mu and sigma)"


def gradient_derivation(weighted: bool, N: int) -> Derivation:
    """three_term: the (per-event) gradient is (c1/sigma)(I - U V) g."""
    b = exact_bn(N, weighted)
    J_closed = _c1 / b.sigma * (sp.eye(N) - b.one * b.p.T - b.fhat * b.fhat.T * b.Lam)
    if weighted:
        via_jacobian = b.Lam.inv() * J_closed.T * b.Lam * b.g
        last = "Lambda^-1 (I - p 1^T - Lambda fhat fhat^T) Lambda = I - 1 p^T - fhat fhat^T Lambda = Q"
    else:
        via_jacobian = J_closed.T * b.g
        last = "J is symmetric for p = 1/N: J^T = (c1/sigma) P_perp"
    return Derivation(
        component="three_term", size={"N": N},
        claim=Claim(b.gradient, "==", _c1 / b.sigma * b.P * b.g),
        chain=[
            eq(b.back, Algebra("chain rule: dL/df = J^T (dL/df_bn), J = d f_bn / d f the explicit Jacobian"
                               + (", dL/df_bn = Lambda g, divided by p per event" if weighted else ""))),
            eq(via_jacobian, Algebra("quotient rule: J = (c1/sigma)(I - 1 p^T - fhat fhat^T Lambda), since "
                                     "dmu = p^T df and dsigma = fhat^T Lambda df")),
            eq(_c1 / b.sigma * b.P * b.g, Algebra(last)),
        ],
    )


def _consequence_derivation(weighted: bool, N: int, component: str) -> Derivation:
    """centred (w = 1) or orthogonal_to_f (w = f): sum_k p_k w_k G_k = 0 for the gradient G itself."""
    b = exact_bn(N, weighted)
    w = b.one if component == "centred" else b.f
    pw = (b.Lam * w).T  # the row (Lambda w)^T
    lhs = (pw * b.back)[0]  # the gradient by the chain rule through the explicit Jacobian (three_term: = dL/df)
    if component == "centred":
        expanded = pw - (pw * b.one) * b.p.T - (pw * b.fhat) * b.fhat.T * b.Lam
        why = "p^T Q = p^T - (p^T 1) p^T - (p^T fhat) fhat^T Lambda = 0: " + _GRAM
    else:  # f = mu 1 + sigma fhat = U (mu, sigma)^T
        expanded = sp.Matrix([[b.mu, b.sigma]]) * (b.U.T * b.Lam - (b.U.T * b.Lam * b.U) * b.V)
        why = "f^T Lambda = (mu, sigma) V, so f^T Lambda Q = (mu, sigma)(V - (V U) V) = 0: " + _GRAM
    return Derivation(
        component=component, size={"N": N},
        claim=Claim(lhs, "==", 0),
        chain=[
            eq(_c1 / b.sigma * (pw * b.P * b.g)[0], Algebra("the quotient rule: the gradient is (c1/sigma) Q g")),
            eq(_c1 / b.sigma * (expanded * b.g)[0], Algebra("expand (Lambda w)^T (I - U V)")),
            eq(0, Algebra(why)),
        ],
    )


def _structure_derivation(weighted: bool, N: int, component: str) -> Derivation:
    """The operator's own properties: idempotent, kills_1, kills_f, rank_n_minus_2 (its trace), self_adjoint."""
    b = exact_bn(N, weighted)
    I, U, V, P, Lam = sp.eye(N), b.U, b.V, b.P, b.Lam
    if component == "idempotent":
        claim = Claim(P * P, "==", P)
        chain = [eq(I - 2 * U * V + U * (V * U) * V, Algebra("expand (I - U V)^2")),
                 eq(I - 2 * U * V + U * sp.eye(2) * V, Algebra(_GRAM)),
                 eq(P, Algebra("I - 2 U V + U V = I - U V"))]
    elif component == "kills_1":
        claim = Claim(P * b.one, "==", sp.zeros(N, 1))
        chain = [eq(b.one - U * (V * b.one), Algebra("expand (I - U V) 1")),
                 eq(b.one - U * sp.Matrix([1, 0]), Algebra("V 1 = (p^T 1, fhat^T Lambda 1) = (1, 0)")),
                 eq(sp.zeros(N, 1), Algebra("U (1, 0)^T = 1"))]
    elif component == "kills_f":
        claim = Claim(P * b.f, "==", sp.zeros(N, 1))
        ms = sp.Matrix([b.mu, b.sigma])
        chain = [eq(P * U * ms, Algebra("f = mu 1 + sigma fhat = U (mu, sigma)^T")),
                 eq((U - U * (V * U)) * ms, Algebra("expand (I - U V) U")),
                 eq(sp.zeros(N, 1), Algebra(_GRAM + ", so U - U (V U) = 0"))]
    elif component == "rank_n_minus_2":
        claim = Claim(P.trace(), "==", N - 2)
        chain = [eq(N - (V * U).trace(), Algebra("tr(I - U V) = N - tr(V U)")),
                 eq(N - 2, Algebra(_GRAM + ", and tr I_2 = 2"))]
    elif component == "self_adjoint":
        M = Lam * P if weighted else P
        claim = Claim(M, "==", M.T)
        chain = [eq(Lam - (Lam * U) * (Lam * U).T if weighted else I - U * U.T / N,
                    Algebra("Lambda (I - U U^T Lambda) = Lambda - (Lambda U)(Lambda U)^T" if weighted
                            else "P_perp = I - U U^T / N")),
                 eq(M.T, Algebra("a Gram matrix A A^T is symmetric"))]
    else:
        raise ValueError(component)
    return Derivation(component=component, size={"N": N}, claim=claim, chain=chain)


#: the sizes at which each component is derived: SymPy's time grows fast with N and with the weights
#: (measured on a shared core: batch three_term 0.4/1.2/3.8 s at N = 2/3/4, idempotent 41 s at N = 4;
#: weighted three_term about 70 s at N = 3); every other component and size is tested only
BATCH_PROOFS = {"three_term": PROVED_SIZES, "centred": PROVED_SIZES, "orthogonal_to_f": PROVED_SIZES,
                "kills_1": PROVED_SIZES, "kills_f": PROVED_SIZES, "rank_n_minus_2": PROVED_SIZES,
                "self_adjoint": PROVED_SIZES, "idempotent": (2, 3)}
WEIGHTED_PROOFS = {"centred": (2, 3), "kills_1": (2, 3), "rank_n_minus_2": (2, 3), "self_adjoint": (2, 3)}


def _derivation(weighted: bool, N: int, component: str) -> Derivation:
    if component == "three_term":
        return gradient_derivation(weighted, N)
    if component in ("centred", "orthogonal_to_f"):
        return _consequence_derivation(weighted, N, component)
    return _structure_derivation(weighted, N, component)


def projection_derivations(weighted: bool) -> list:
    """One family per derived component of the projection property, at the sizes above."""
    proofs = WEIGHTED_PROOFS if weighted else BATCH_PROOFS
    return [Derivation.for_sizes(lambda N, c=c: _derivation(weighted, N, c), N=sizes) for c, sizes in proofs.items()]


# ============================================================================= the drawn instances


def _values(rng, N):
    """f with a mix of: plain reals, tiny variance on a large offset, exactly constant."""
    z = rng.reals(N)
    offset = rng.normal(()) * 10.0 ** rng.uniform((), 0.0, 2.0)
    spread = 10.0 ** (-rng.uniform((), 0.0, 6.0))
    mode = rng.uniform(())
    const = xp.where(rng.coin(0.5), 0.0, offset)  # 0: sigma = 0 exactly; else rounding may leave sigma ~ 1e-17 |f|
    f = xp.where(mode < 0.45, z * 10.0 ** rng.uniform((), -2.0, 2.0),
                  xp.where(mode < 0.9, offset + spread * z, xp.full((N,), const)))
    return f


def _common(rng, N):
    return {
        "f": _values(rng, N),
        "g": rng.reals(N) * 10.0 ** rng.uniform((), -1.0, 1.0),
        "c1": rng.normal(()) * 10.0 ** rng.uniform((), -1.0, 1.0),
        "c0": rng.normal(()),
        "eps": xp.where(rng.coin(0.5), 0.0, 10.0 ** rng.uniform((), -4.0, 0.0)),
        "biased": xp.where(rng.coin(0.75), 1.0, 0.0),
    }


def _weights(rng, N):
    """Probability vectors: uniform (the batch form), mildly uneven, or spanning 8 decades."""
    mode = rng.uniform(())
    decades = xp.where(mode < 0.5, 8.0, 1.0)
    raw = 10.0 ** (-decades * rng.uniform((N,)))
    raw = xp.where(mode > 0.85, xp.ones((N,)), raw)
    raw = xp.where(rng.coin(0.05, (N,)), 0.0, raw)  # an event of probability 0 (violates positive_p)
    return raw / xp.sum(raw)


def batch_instance(rng, s):
    return _common(rng, s.N)


def weighted_instance(rng, s):
    return {**_common(rng, s.N), "q": _weights(rng, s.N)}


def probabilities(x):
    """p = q / sum(q): the sampler stores unnormalised weights so that shrinking (which replaces
    entries by simpler values) always leaves a probability vector."""
    q = xp.abs(x["q"])
    tot = xp.sum(q)
    return xp.where(tot > 0, q / xp.where(tot > 0, tot, 1.0), 1.0 / q.shape[0])


# ============================================================================= the property: a BN-projection claim


def _projector_components(P, aP, f, p, fhat, N, kappa, weighted, expect_rank=True):
    one = xp.ones((N,))
    out = {
        "idempotent": residual(P @ P, P, kappa * (aP @ aP + aP)),
        "kills_1": residual(P @ one, xp.zeros((N,)), kappa * (aP @ one)),
        "kills_f": residual(P @ f, xp.zeros((N,)), kappa * (aP @ xp.abs(f))),
    }
    if expect_rank:
        out["rank_n_minus_2"] = residual(xp.sum(xp.diagonal(P)), N - 2.0, kappa * xp.sum(xp.diagonal(aP)) + N)
    M = P * p[:, None] if weighted else P  # Lambda P (weighted) or P itself
    S = aP * p[:, None] if weighted else aP
    out["self_adjoint"] = residual(M, xp.transpose(M), kappa * (S + xp.transpose(S)))
    return out


def make_claim(weighted, prefactor=None, projector=None, stat_p=None, drop_structure=False):
    """The property of a BN-projection claim. ``prefactor``/``projector``/``stat_p`` replace the
    theorem's (for mutants); ``stat_p(p, N)`` gives the weights used for the claimed mu, sigma."""
    prefactor = prefactor or (lambda c1, sigma, var, p: c1 / sigma)
    projector = projector or (weighted_projector if weighted else batch_projector)

    def prop(s, x):
        N = s.N
        f, g, c1, c0, eps, biased = x["f"], x["g"], x["c1"], x["c0"], x["eps"], x["biased"]
        p = probabilities(x) if weighted else _uniform(N)
        st_ = stats(f, stat_p(p, N) if stat_p else p)
        sigma, fhat, kappa = st_.sigma, st_.fhat, st_.kappa
        P, aP = projector(fhat, p, N)
        pre = prefactor(c1, sigma, st_.var, p)
        claimed = pre * (P @ g)
        # d = dL/df_bn: L = sum_i l_i (batch) or sum_i p_i l_i (weighted); gradients per event
        d = p * g if weighted else g
        # per-event gradient (dL/df_i)/p_i; p_i = 0 only where positive_p is dropped: reported as 0, not 0/0
        per = (lambda v: xp.where(p > 0, v / xp.where(p > 0, p, 1.0), 0.0)) if weighted else (lambda v: v)
        hand = per(three_term_backward(f, p, d, c1, eps, biased))
        w = p if weighted else _uniform(N)
        # the terms summed on each side: the actual gradient's (c1/sigma) |Q| |g| and the claimed pre |P| |g|
        true_terms = (weighted_projector if weighted else batch_projector)(fhat, p, N)[1]
        scale_vec = xp.abs(c1) / sigma * (true_terms @ xp.abs(g)) + xp.abs(pre) * (aP @ xp.abs(g))
        out = {"three_term": residual(hand, claimed, kappa * scale_vec)}
        # the same against jax.vjp through a real BN forward: a claim about autodiff, float64 only
        out["autodiff"] = xp.float64_only(lambda: residual(
            per(autodiff_backward(f, p, d, c1, c0, eps, biased, weighted)), claimed, kappa * scale_vec))
        grad = hand
        # consequences, on the actual gradient G: 1^T Lambda G = 0 (centred), f^T Lambda G = 0
        out["centred"] = residual(xp.sum(w * grad), 0.0, kappa * xp.sum(w * scale_vec))
        out["orthogonal_to_f"] = residual(xp.sum(w * f * grad), 0.0, kappa * xp.sum(w * xp.abs(f) * scale_vec))
        if not drop_structure:
            out.update(_projector_components(P, aP, f, p, fhat, N, kappa, weighted))
        out["defined"] = residual(xp.where(st_.defined, 0.0, 1.0), 0.0, 0.0)
        return out

    return prop


EPS_ZERO = Assumption("eps_zero", "the BN forward has epsilon = 0", lambda s, x: x["eps"] == 0)
BIASED = Assumption("biased_variance", "the BN forward divides by the population (biased) standard deviation",
                    lambda s, x: x["biased"] > 0.5)


def _nonconstant(weighted):
    def holds(s, x):
        p = probabilities(x) if weighted else _uniform(s.N)
        return stats(x["f"], p).defined

    return Assumption("nonconstant_f", "f is not constant: sigma = sqrt(p^T (f - mu)^2) > 1e-9 max|f|", holds,
                      reason="sigma > 0 with a margin: below 1e-9 max|f| the computed sigma is rounding of mu "
                             "(f constant to 16 digits) and float64 and 50-digit arithmetic may disagree")


# ============================================================================= Theorem 5: the batch form


def _mutant_unbiased(weighted):
    """The claim with the unbiased variance: sigma_u = sigma / sqrt(1 - sum p^2), fhat_u = fhat sqrt(1 - sum p^2)."""
    def prefactor(c1, sigma, var, p):
        return c1 / (sigma / xp.sqrt(1.0 - xp.sum(p * p)))

    base = weighted_projector if weighted else batch_projector

    def projector(fhat, p, N):
        return base(fhat * xp.sqrt(1.0 - xp.sum(p * p)), p, N)

    return make_claim(weighted, prefactor=prefactor, projector=projector)


def _drop_fhat(weighted):
    def projector(fhat, p, N):
        one = xp.ones((N,))
        return _combine([xp.eye(N), -(_outer(one, p) if weighted else _outer(one, one) / N)])

    return make_claim(weighted, projector=projector)


_SIGMA_SQUARED = dict(prefactor=lambda c1, sigma, var, p: c1 / (sigma * sigma))


def wrong_gradient_claim(mutant: str, N: int = 3) -> Derivation:
    """A batch mutant's claim about the gradient at N (no chain): the engine refutes it at an exact
    rational point, and the crosscheck ties it to the mutant's property."""
    b = exact_bn(N, weighted=False)
    I, one, fhat, sigma = sp.eye(N), b.one, b.fhat, b.sigma
    shrink = sp.sqrt(sp.Rational(N - 1, N))  # the unbiased sigma is sigma / shrink, its fhat is fhat * shrink
    rhs = {
        "drop_fhat_term": _c1 / sigma * (I - one * one.T / N) * b.g,
        "sigma_squared": _c1 / sigma ** 2 * b.P * b.g,
        "unbiased_variance": _c1 * shrink / sigma * (I - one * one.T / N - shrink ** 2 * fhat * fhat.T / N) * b.g,
    }[mutant]
    return Derivation(component="three_term", size={"N": N}, claim=Claim(b.gradient, "==", rhs))


def _unweighted_projector(fhat, p, N):
    return batch_projector(fhat, p, N)


def _lambda_transposed(fhat, p, N):
    one = xp.ones((N,))
    return _combine([xp.eye(N), -_outer(p, one), -_outer(p * fhat, fhat)])


bn_projection = Theorem(
    id="tian2018.thm5.bn-projection",
    title="Batch Norm backward is the projection (c1/sigma) P_perp onto the complement of span{1, f}",
    source=SOURCE.at("Theorem 5 (Batch Norm as a projection)", formalisation="t5"),
    statement=(
        r"Let $f \in \mathbb{R}^N$ be non-constant, $\mu = \mathbf{1}^\top f/N$, $\sigma^2 = \|f - \mu\mathbf{1}\|^2/N$ "
        r"(biased), $\hat f = (f - \mu\mathbf{1})/\sigma$ and $f_{bn} = c_1 \hat f + c_0 \mathbf{1}$ ($\epsilon = 0$). "
        r"Then $\partial L/\partial f = \frac{c_1}{\sigma} P^\perp \partial L/\partial f_{bn}$ with "
        r"$P^\perp = I - (\mathbf{1}\mathbf{1}^\top + \hat f \hat f^\top)/N$, which is symmetric, idempotent, of rank "
        r"$N - 2$ and kills $\mathbf{1}$ and $f$; the gradient is zero-mean and orthogonal to $f$."
    ),
    property=make_claim(False),
    structure=BATCH_SIZES,
    sample=batch_instance,
    tolerance=TOLERANCE,
    assumptions=[EPS_ZERO, _nonconstant(False), BIASED],
    derivation=projection_derivations(weighted=False),
    mutants=[
        Mutant("unbiased_variance", "the formula with the unbiased (N - 1) standard deviation in sigma and fhat",
               _mutant_unbiased(False), derivation=wrong_gradient_claim("unbiased_variance")),
        Mutant("drop_fhat_term", "P_perp = I - 1 1^T / N (the fhat fhat^T / N term dropped)", _drop_fhat(False),
               derivation=wrong_gradient_claim("drop_fhat_term")),
        Mutant("sigma_squared", "prefactor c1 / sigma^2 in place of c1 / sigma", make_claim(False, **_SIGMA_SQUARED),
               derivation=wrong_gradient_claim("sigma_squared")),
    ],
)


# ============================================================================= Theorem 5 with event probabilities

bn_projection_weighted = Theorem(
    id="tian2018.thm5.bn-projection.weighted",
    title="Reformulated Batch Norm backward: a Lambda-self-adjoint projector on per-event gradients",
    source=SOURCE.at("Theorem 5, reformulated (event-probability) version", formalisation="t5"),
    statement=(
        r"With event probabilities $p > 0$, $\Lambda = \operatorname{diag} p$, $\mu = p^\top f$, "
        r"$\sigma^2 = p^\top (f - \mu)^2 > 0$, $\hat f = (f - \mu)/\sigma$, $f_{bn} = c_1 \hat f + c_0$ ($\epsilon = 0$) and "
        r"$L = \sum_i p_i l_i(f_{bn,i})$, $g_i = l_i'(f_{bn,i})$: $G_i := (\partial L/\partial f_i)/p_i = "
        r"\frac{c_1}{\sigma}[(I - \mathbf{1}\mathbf{1}^\top\Lambda - \hat f \hat f^\top \Lambda) g]_i$; the operator is idempotent, "
        r"self-adjoint under $\langle a, b\rangle = a^\top \Lambda b$, of rank $N-2$, kills $\mathbf{1}$ and $f$; hence "
        r"$\mathbf{1}^\top \Lambda G = 0$ and $f^\top \Lambda G = 0$. The batch form is $p = \mathbf{1}/N$."
    ),
    property=make_claim(True),
    structure=BATCH_SIZES,
    sample=weighted_instance,
    tolerance=TOLERANCE,
    assumptions=[EPS_ZERO, _nonconstant(True), BIASED,
                 Assumption("positive_p", "every event has probability p_i > 0 (the per-event gradient divides by p_i)",
                            lambda s, x: xp.all(x["q"] > 0))],
    derivation=projection_derivations(weighted=True),
    uses=["tian2018.thm5.bn-projection"],
    mutants=[
        Mutant("unweighted_projector", "the batch projector I - (1 1^T + fhat fhat^T)/N used with weights p",
               make_claim(True, projector=_unweighted_projector, drop_structure=True)),
        Mutant("unbiased_variance", "sigma^2 with the reliability-weights correction 1/(1 - sum p^2) (N/(N-1) for p = 1/N)",
               _mutant_unbiased(True)),
        Mutant("drop_fhat_term", "Q = I - 1 1^T Lambda (the fhat fhat^T Lambda term dropped)", _drop_fhat(True)),
        Mutant("sigma_squared", "prefactor c1 / sigma^2 in place of c1 / sigma", make_claim(True, **_SIGMA_SQUARED)),
        Mutant("lambda_transposed", "Q^T = I - Lambda 1 1^T - Lambda fhat fhat^T in place of Q",
               make_claim(True, projector=_lambda_transposed)),
    ],
)


# ============================================================================= consequence: row energy (linear -> BN)

D_IN, K_OUT = 3, 2


def energy_instance(rng, s):
    N = s.N
    base = weighted_instance(rng, s)
    X = rng.reals((N, D_IN)) * 10.0 ** rng.uniform((), -1.0, 1.0)
    X = xp.where(rng.coin(0.1), xp.zeros((N, D_IN)), X)  # constant (zero) pre-activations: sigma = 0
    return {
        "X": X,
        "W": rng.normal((K_OUT, D_IN)),
        "q": base["q"],
        "c1": rng.normal((K_OUT,)),
        "c0": rng.normal((K_OUT,)),
        "a": rng.reals((N, K_OUT)),
        "b": rng.reals((N, K_OUT)),
        "eps": base["eps"],
        "biased": base["biased"],
        "eta": 10.0 ** rng.uniform((), -3.0, 0.0),
    }


def _loss_grad_y(y, a, b, p):
    """L = sum_i p_i sum_k (a_ik y_ik + b_ik y_ik^2 / 2): dL/dy = p (a + b y)."""
    return p[:, None] * (a + b * y)


def _bn_cols(f, p, c1, c0, eps, biased, power=1):
    mu = xp.sum(p[:, None] * f, axis=0)
    u = f - mu[None, :]
    k = _correction(p, biased)
    v = k * xp.sum(p[:, None] * u * u, axis=0) + eps
    sd = xp.sqrt(xp.where(v > 0, v, 1.0))
    return c1[None, :] * u / sd[None, :] ** power + c0[None, :]


def _energy_loss(W, x, power=1, bn=True):
    f = x["X"] @ W.T
    p = probabilities(x)
    y = _bn_cols(f, p, x["c1"], x["c0"], x["eps"], x["biased"], power) if bn else f
    return xp.sum(p[:, None] * (x["a"] * y + 0.5 * x["b"] * y * y))


def _hand_grad_W(x):
    """grad_W L by the three-term backward per output column (xp only)."""
    X, W, p = x["X"], x["W"], probabilities(x)
    f = X @ xp.transpose(W)
    y = _bn_cols(f, p, x["c1"], x["c0"], x["eps"], x["biased"])
    d = _loss_grad_y(y, x["a"], x["b"], p)
    cols = [three_term_backward(f[:, j], p, d[:, j], x["c1"][j], x["eps"], x["biased"]) for j in range(K_OUT)]
    dLdf = xp.stack(cols, axis=1)
    return xp.transpose(dLdf) @ X


def make_energy(power=1, bn=True, step=lambda eta, gg: eta * eta * gg):
    """Scale invariance w_k . grad_k = 0 and the step identity ||w - eta grad||^2 = ||w||^2 + step(eta, ||grad||^2)."""

    def prop(s, x):
        W = x["W"]
        autodiff = xp.float64_only(lambda: xp.jax.grad(lambda w: _energy_loss(w, x, power, bn))(W))
        # the mutants that change the forward (power, no BN) have no hand-written backward: autodiff only
        hand = _hand_grad_W(x) if power == 1 and bn else None
        X, p = x["X"], probabilities(x)
        f = X @ xp.transpose(W)
        y = _bn_cols(f, p, x["c1"], x["c0"], x["eps"], x["biased"])
        g = x["a"] + x["b"] * y  # per-event dl/dy
        kappas, sizes = [], []
        for j in range(K_OUT):
            col = stats(f[:, j], p)
            sigma, fhat, kappa = col.sigma, col.fhat, col.kappa
            kappas.append(kappa)
            # size of the terms summed in dL/df_j = (c1/sigma) Lambda Q g (cf. make_claim), pulled back by X
            sv = xp.abs(x["c1"][j]) / sigma * p * (xp.abs(g[:, j]) + xp.sum(p * xp.abs(g[:, j]))
                                                   + xp.abs(fhat) * xp.sum(p * xp.abs(fhat * g[:, j])))
            sizes.append(xp.sum(xp.abs(W[j]) * (xp.transpose(xp.abs(X)) @ sv)))
        kappa, size = xp.stack(kappas), xp.stack(sizes)
        eta = x["eta"]

        def invariance(G):
            return residual(xp.sum(W * G, axis=1), 0.0, kappa * size)

        def step_identity(G):
            w_new = W - eta * G
            lhs = xp.sum(w_new * w_new, axis=1)
            rhs = xp.sum(W * W, axis=1) + step(eta, xp.sum(G * G, axis=1))
            return residual(lhs, rhs, kappa * (lhs + rhs + 2 * eta * size))

        out = {}
        if hand is not None:
            out["three_term_scale_invariance"] = invariance(hand)
        out["autodiff_scale_invariance"] = xp.float64_only(lambda: invariance(autodiff))
        out["step"] = step_identity(hand) if hand is not None else xp.float64_only(lambda: step_identity(autodiff))
        defined = xp.all(xp.stack([stats(f[:, j], probabilities(x)).defined for j in range(K_OUT)]))
        out["defined"] = residual(xp.where(defined, 0.0, 1.0), 0.0, 0.0)
        return out

    return prop


def _energy_nonconstant(s, x):
    f = x["X"] @ xp.transpose(x["W"])
    return xp.all(xp.stack([stats(f[:, j], probabilities(x)).defined for j in range(K_OUT)]))


bn_energy = Theorem(
    id="tian2018.thm5.bn-energy",
    title="Linear layer followed by Batch Norm: row energy ||w_k||^2 is conserved by gradient flow",
    source=SOURCE.at("Theorem 5, a consequence (row energy)", formalisation="t5"),
    statement=(
        r"For pre-activations $f_{:,k} = X w_k$ followed by Batch Norm per column ($\epsilon = 0$, columns non-constant) "
        r"and any differentiable loss $L$ of the normalised outputs: $w_k^\top \nabla_{w_k} L = 0$ for every row $k$, so "
        r"$\frac{d}{dt}\|w_k\|^2 = 0$ under gradient flow, and a step $w_k \leftarrow w_k - \eta \nabla_{w_k} L$ gives "
        r"$\|w_k - \eta\nabla_{w_k}L\|^2 = \|w_k\|^2 + \eta^2 \|\nabla_{w_k} L\|^2$ exactly. Holds with either variance convention."
    ),
    property=make_energy(),
    structure=st.fixed_dictionaries({"N": st.integers(2, 6)}),
    sample=energy_instance,
    tolerance=TOLERANCE,
    assumptions=[EPS_ZERO, Assumption("nonconstant_f", "every output column of X W^T is non-constant", _energy_nonconstant)],
    conventions="The loss in the numeric check is sum_i p_i sum_k (a_ik y_ik + b_ik y_ik^2/2).",
    uses=["tian2018.thm5.bn-projection.weighted"],
    mutants=[
        Mutant("no_batchnorm", "w^T grad_w L = 0 for the linear layer alone (no BN)", make_energy(bn=False)),
        Mutant("sigma_squared", "BN dividing by sigma^2 is also scale invariant", make_energy(power=2)),
        Mutant("norm_preserved_by_step", "a discrete step preserves ||w||^2 exactly", make_energy(step=lambda eta, gg: 0.0 * gg)),
        Mutant("step_grows_by_eta", "a step grows ||w||^2 by eta ||grad||^2 (not eta^2)", make_energy(step=lambda eta, gg: eta * gg)),
    ],
)
