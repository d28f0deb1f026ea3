"""Batch Norm's backward pass is a projection (Tian 2018, Theorem 5; formalisation T5).

f_bn = c1 (f - mu 1)/sigma + c0 1 with the biased (population) variance and eps = 0. Then
dL/df = (c1/sigma) P_perp dL/df_bn, P_perp = I - (1 1^T + fhat fhat^T)/N, the orthogonal
projector onto the complement of span{1, f}. Reformulated with event probabilities p
(Lambda = diag p): the per-event gradient (dL/df_i)/p_i equals (c1/sigma) Q g_bn with
Q = I - 1 1^T Lambda - fhat fhat^T Lambda, a projector self-adjoint under <a, b> = a^T Lambda b.
Consequence for a linear layer followed by BN: w^T grad_w L = 0 (scale invariance), so ||w||^2
is constant under gradient flow and grows by exactly eta^2 ||grad||^2 under a step of size eta.

Structural derivation (every N): write U = [1, fhat] (N x 2). Every operator here is
a0 I + U A V with V = U^T (batch) or U^T Lambda (weighted), and such operators multiply by
(a0 + U A V)(b0 + U B V) = a0 b0 + U (a0 B + b0 A + A (V U) B) V (checked with non-commutative
symbols). The Gram matrix V U is diag(N, N) (batch: 1^T 1 = N, 1^T fhat = 0, fhat^T fhat = N)
or I_2 (weighted: p^T 1 = 1, p^T fhat = 0, fhat^T Lambda fhat = 1); those relations are checked
from the definitions of mu and sigma for symbolic N. Everything else is 2 x 2 matrix algebra.

Numerics: the property differentiates a real BN forward with ``jax.vjp`` (float64) and also runs
the classic three-term backward of Ioffe & Szegedy (2015) written by hand over ``xp``. Under the
50-digit backend ``jax.vjp`` cannot run, so there the autodiff component is left out and the
hand-written backward (itself checked against autodiff in float64) carries the claim.
"""

from __future__ import annotations

import sympy as sp
from hypothesis import strategies as st

from theorems.sources import TIAN
from verify import ALL_SIZES, Assumption, Derivation, Equal, Mutant, Theorem, Tolerance, residual, xp

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


# ----------------------------------------------------------------------------- sampling


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


# ----------------------------------------------------------------------------- BN pieces (xp)


def _uniform(N):
    return xp.ones((N,)) / N


def stats(f, p):
    """mu, u = f - mu, biased variance, whether it is > 0, the safe sigma, fhat and kappa."""
    mu = xp.sum(p * f)
    u = f - mu
    var = xp.sum(p * u * u)
    # sigma > 1e-9 max|f|: beyond that f is constant up to the rounding of mu (and kappa > 1e9)
    defined = (var > 0) & (var > (1e-9 * xp.max(xp.abs(f))) ** 2)
    sigma = xp.sqrt(xp.where(defined, var, 1.0))
    fhat = u / sigma
    kappa = 1.0 + xp.max(xp.abs(f)) / sigma
    return mu, u, var, defined, sigma, fhat, kappa


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


# ----------------------------------------------------------------------------- properties

# A claim: (prefactor, projector) -> the operator claimed to map g_bn to the (per-event) gradient.
# prefactor(c1, sigma, f, p) ; projector(fhat, p, N) -> N x N matrix.


def _combine(terms):
    """A projector given as a list of matrix terms: (their sum, the sum of their absolute values)."""
    return sum(terms[1:], terms[0]), sum([xp.abs(t) for t in terms[1:]], xp.abs(terms[0]))


def batch_projector(fhat, p, N):
    one = xp.ones((N,))
    return _combine([xp.eye(N), -_outer(one, one) / N, -_outer(fhat, fhat) / N])


def weighted_projector(fhat, p, N):
    one = xp.ones((N,))
    return _combine([xp.eye(N), -_outer(one, p), -_outer(fhat, fhat * p)])


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
        mu, u, var, defined, sigma, fhat, kappa = stats(f, stat_p(p, N) if stat_p else p)
        P, aP = projector(fhat, p, N)
        pre = prefactor(c1, sigma, var, p)
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
        out["defined"] = residual(xp.where(defined, 0.0, 1.0), 0.0, 0.0)
        return out

    return prop


EPS_ZERO = Assumption("eps_zero", "the BN forward has epsilon = 0", lambda s, x: x["eps"] == 0)
BIASED = Assumption("biased_variance", "the BN forward divides by the population (biased) standard deviation",
                    lambda s, x: x["biased"] > 0.5)


def _nonconstant(weighted):
    def holds(s, x):
        p = probabilities(x) if weighted else _uniform(s.N)
        return stats(x["f"], p)[3]

    return Assumption("nonconstant_f", "f is not constant: sigma = sqrt(p^T (f - mu)^2) > 1e-9 max|f|", holds,
                      reason="sigma > 0 with a margin: below 1e-9 max|f| the computed sigma is rounding of mu "
                             "(f constant to 16 digits) and float64 and 50-digit arithmetic may disagree")


# ----------------------------------------------------------------------------- symbolic

_N = sp.Symbol("N", integer=True, positive=True)
_k = sp.Symbol("k", integer=True)
_fI, _pI, _dfI = sp.IndexedBase("f"), sp.IndexedBase("p"), sp.IndexedBase("df")
_mu, _sig = sp.Symbol("mu", real=True), sp.Symbol("sigma", positive=True)
_c1, _c0 = sp.symbols("c1 c0", real=True)
_U, _V, _A, _B = sp.symbols("U V A B", commutative=False)
_a0, _b0 = sp.symbols("a0 b0")
_I2 = sp.eye(2)


def _lin(M):
    """A matrix identity as one scalar: sum_ij t_ij M_ij with independent symbols t_ij
    (zero as a polynomial in t iff every entry is zero)."""
    M = sp.Matrix(M)
    return sum(sp.Symbol(f"t_{i}_{j}") * M[i, j] for i in range(M.rows) for j in range(M.cols))


def _S(expr):
    return sp.Sum(expr, (_k, 1, _N))


def _algebra_steps(G, A, what):
    """Steps in the algebra {a0 I + U A V}: the product rule, then 2x2 algebra with Gram G = V U."""
    Ab = sp.Matrix(A)
    return [
        Equal((_a0 + _U * _A * _V) * (_b0 + _U * _B * _V), _a0 * _b0 + _U * (_a0 * _B + _b0 * _A + _A * (_V * _U) * _B) * _V,
              why="product rule of the algebra {a0 I + U A V} (non-commutative symbols: associativity only)"),
        Equal(_lin(2 * Ab + Ab * G * Ab), _lin(Ab),
              why=f"{what}: idempotent: P^2 = I + U (2A + A G A) V and 2A + A G A = A"),
        Equal(_lin(_I2 + Ab * G), _lin(sp.zeros(2, 2)),
              why=f"{what}: P U = U (I + A G) = 0: P kills 1 and fhat, hence f = mu 1 + sigma fhat"),
        Equal(_N + (Ab * G).trace(), _N - 2,
              why=f"{what}: trace P = N + tr(A V U) = N - 2; a projector's rank is its trace: rank N - 2"),
    ]


def _jacobian_step(weighted):
    """d f_bn_i along a direction df, for a generic component i (all N): quotient rule with
    dmu = p^T df and dsigma = fhat^T Lambda df (1/N for p = 1/N)."""
    t = sp.Symbol("t", real=True)
    fi, mu, sig = sp.Function("f_i")(t), sp.Function("mu")(t), sp.Function("sigma")(t)
    dfi, dmu, dsig = sp.symbols("df_i dmu dsigma", real=True)
    fbn = _c1 * (fi - mu) / sig + _c0
    lhs = sp.diff(fbn, t).subs({sp.Derivative(fi, t): dfi, sp.Derivative(mu, t): dmu, sp.Derivative(sig, t): dsig})
    lhs = lhs.subs({fi: sp.Symbol("f_i", real=True), mu: _mu, sig: _sig})
    fhat_i = (sp.Symbol("f_i", real=True) - _mu) / _sig
    rhs = _c1 / _sig * (dfi - dmu - fhat_i * dsig)
    return Equal(lhs, rhs, why="quotient rule: d f_bn_i = (c1/sigma)(df_i - dmu - fhat_i dsigma): J = (c1/sigma)(I - 1 dmu^T - fhat dsigma^T)")


def _relation_steps(weighted):
    """The Gram relations, for symbolic N, from the definitions of mu and sigma."""
    w = _pI[_k] if weighted else 1 / _N
    Sf, Sp = _S(w * _fI[_k]), _S(w)
    Su2 = _S(w * (_fI[_k] - _mu) ** 2)
    gram = "p^T 1 = 1 (p a probability vector)" if weighted else "1^T 1 = N"
    steps = [
        Equal(_S(w * (_fI[_k] - _mu) / _sig), (Sf - _mu * Sp) / _sig,
              why="linearity of the sum: 1^T Lambda fhat = (p^T f - mu p^T 1)/sigma"),
        Equal(((Sf - _mu * Sp) / _sig).subs(_mu, Sf).subs(Sp, 1 if weighted else Sp.doit()),
              0, why=f"with mu = p^T f and {gram}: 1^T Lambda fhat = 0" if weighted else "with mu = 1^T f / N: 1^T fhat = 0"),
        Equal(_S(w * ((_fI[_k] - _mu) / _sig) ** 2).subs(_sig, sp.sqrt(Su2)), 1,
              why="with sigma^2 = p^T (f - mu)^2 (biased): fhat^T Lambda fhat = 1 (batch: fhat^T fhat / N = 1)"),
        # dsigma: 2 sigma dsigma = 2 sum w u_k (df_k - dmu) = 2 sum w u_k df_k - 2 dmu sum w u_k
        Equal(_S(w * (_fI[_k] - _mu) * (_dfI[_k] - sp.Symbol("dmu"))),
              _S(w * (_fI[_k] - _mu) * _dfI[_k]) - sp.Symbol("dmu") * _S(w * (_fI[_k] - _mu)),
              why="d(sigma^2)/2 = sum w_k u_k (df_k - dmu) = sum w_k u_k df_k - dmu * sigma (1^T Lambda fhat), "
                  "so dsigma = fhat^T Lambda df (the last sum is 0 by the relation above)"),
    ]
    return steps


def _explicit_batch(N):
    f = sp.symbols(f"f1:{N + 1}", real=True)
    g = sp.symbols(f"g1:{N + 1}", real=True)
    mu = sum(f) / N
    s = sp.sqrt(sum((fi - mu) ** 2 for fi in f) / N)
    L = sum(gi * (_c1 * (fi - mu) / s + _c0) for gi, fi in zip(g, f))
    fh = [(fi - mu) / s for fi in f]
    claim = [_c1 / s * (g[i] - sum(g) / N - fh[i] * sum(a * b for a, b in zip(fh, g)) / N) for i in range(N)]
    t = sp.symbols(f"t1:{N + 1}")
    return Equal(sum(ti * sp.diff(L, fi) for ti, fi in zip(t, f)), sum(ti * c for ti, c in zip(t, claim)),
                 why=f"explicit symbols, N = {N}: SymPy's derivative of L = sum g_i f_bn_i equals (c1/sigma) P_perp g")


def _explicit_weighted(N):
    f = sp.symbols(f"f1:{N + 1}", real=True)
    g = sp.symbols(f"g1:{N + 1}", real=True)
    q = sp.symbols(f"q1:{N + 1}", positive=True)
    p = [qi / sum(q) for qi in q]
    mu = sum(pi * fi for pi, fi in zip(p, f))
    s = sp.sqrt(sum(pi * (fi - mu) ** 2 for pi, fi in zip(p, f)))
    L = sum(pi * gi * (_c1 * (fi - mu) / s + _c0) for pi, gi, fi in zip(p, g, f))
    fh = [(fi - mu) / s for fi in f]
    pg = sum(a * b for a, b in zip(p, g))
    pfg = sum(a * b * c for a, b, c in zip(p, fh, g))
    claim = [_c1 / s * (g[i] - pg - fh[i] * pfg) for i in range(N)]
    t = sp.symbols(f"t1:{N + 1}")
    return Equal(sum(ti * sp.diff(L, fi) / pi for ti, fi, pi in zip(t, f, p)), sum(ti * c for ti, c in zip(t, claim)),
                 why=f"explicit symbols, N = {N}, p = q/sum(q): (dL/df_i)/p_i of L = sum p_i g_i f_bn_i equals "
                     "(c1/sigma)(I - 1 1^T Lambda - fhat fhat^T Lambda) g")


_batch_A = -_I2 / _N
_batch_G = sp.diag(_N, _N)

batch_derivation = Derivation(
    scope=ALL_SIZES,
    steps=[
        *_relation_steps(False),
        _jacobian_step(False),
        Equal(_lin(_batch_A - _batch_A.T), 0,
              why="J = (c1/sigma)(I - U (I/N) U^T) with dmu = 1^T df/N, dsigma = fhat^T df/N: coefficient symmetric, "
                  "so J^T = J, P_perp symmetric, and dL/df = J^T g = (c1/sigma) P_perp g"),
        *_algebra_steps(_batch_G, _batch_A, "batch (Gram diag(N, N))"),
        *[_explicit_batch(n) for n in (2, 3, 4)],
    ],
)

_weighted_A = -_I2
weighted_derivation = Derivation(
    scope=ALL_SIZES,
    steps=[
        *_relation_steps(True),
        _jacobian_step(True),
        Equal(_lin(sp.Matrix([[1, 0], [0, 1]]) * _weighted_A - (sp.Matrix([[1, 0], [0, 1]]) * _weighted_A).T), 0,
              why="J = (c1/sigma)(I - U V), V = U^T Lambda; dL/df = J^T Lambda g = (c1/sigma)(Lambda - Lambda U U^T Lambda) g "
                  "= Lambda (c1/sigma) Q g, and Lambda Q = Lambda - (Lambda U) A' (Lambda U)^T with A' = -I symmetric: "
                  "Q is self-adjoint under <a,b> = a^T Lambda b"),
        *_algebra_steps(_I2, _weighted_A, "weighted (Gram I_2)"),
        Equal(_lin(sp.Matrix([[1, 0]]) * (_I2 + _weighted_A * _I2)), 0,
              why="1^T Lambda Q = (Lambda 1)^T Q = e1^T (V + A V U V) ... = e1^T (I + A G) V = 0: the gradient is centred, 1^T Lambda G = 0"),
        *[_explicit_weighted(n) for n in (4, 3, 2)],
    ],
)


# ----------------------------------------------------------------------------- mutants


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
    derivation=batch_derivation,
    mutants=[
        Mutant("unbiased_variance", "the formula with the unbiased (N - 1) standard deviation in sigma and fhat",
               _mutant_unbiased(False)),
        Mutant("drop_fhat_term", "P_perp = I - 1 1^T / N (the fhat fhat^T / N term dropped)", _drop_fhat(False)),
        Mutant("sigma_squared", "prefactor c1 / sigma^2 in place of c1 / sigma", make_claim(False, **_SIGMA_SQUARED)),
    ],
)

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
    derivation=weighted_derivation,
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


# ----------------------------------------------------------------------------- energy (linear -> BN)

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
            _, _, _, _, sigma, fhat, kappa = stats(f[:, j], p)
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
        defined = xp.all(xp.stack([stats(f[:, j], probabilities(x))[3] for j in range(K_OUT)]))
        out["defined"] = residual(xp.where(defined, 0.0, 1.0), 0.0, 0.0)
        return out

    return prop


def _energy_nonconstant(s, x):
    f = x["X"] @ xp.transpose(x["W"])
    return xp.all(xp.stack([stats(f[:, j], probabilities(x))[3] for j in range(K_OUT)]))


_lam = sp.Symbol("lambda", positive=True)
_V2 = sp.Symbol("V", positive=True)
_fi = sp.Symbol("f_i", real=True)
_ww, _wg, _gg, _eta = sp.symbols("ww wg gg eta", real=True)


def _homogeneity(power):
    """f_bn(lambda f) = f_bn(f) for lambda > 0: mu(lambda f) = lambda mu, sigma^2(lambda f) = lambda^2 sigma^2."""
    def fbn(fi, mu, V):
        return _c1 * (fi - mu) / sp.sqrt(V) ** power + _c0

    return Equal(fbn(_lam * _fi, _lam * _mu, _lam ** 2 * _V2), fbn(_fi, _mu, _V2),
                 why="mu and sigma^2 are homogeneous of degree 1 and 2 in f = X w (linear in w), so for lambda > 0 "
                     "f_bn(lambda w) = f_bn(w): L is scale invariant in each row w_k; d/dlambda at 1 gives w_k^T grad_k L = 0")


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
    derivation=Derivation(
        scope=ALL_SIZES,
        steps=[
            _homogeneity(1),
            Equal((_ww - 2 * _eta * _wg + _eta ** 2 * _gg).subs(_wg, 0), _ww + _eta ** 2 * _gg,
                  why="||w - eta grad||^2 = ||w||^2 - 2 eta w^T grad + eta^2 ||grad||^2, and w^T grad = 0"),
            Equal(-2 * _wg.subs(_wg, 0), 0, why="gradient flow: d||w||^2/dt = -2 w^T grad = 0"),
        ],
    ),
    conventions="The loss in the numeric check is sum_i p_i sum_k (a_ik y_ik + b_ik y_ik^2/2).",
    uses=["tian2018.thm5.bn-projection.weighted"],
    mutants=[
        Mutant("no_batchnorm", "w^T grad_w L = 0 for the linear layer alone (no BN)", make_energy(bn=False)),
        Mutant("sigma_squared", "BN dividing by sigma^2 is also scale invariant", make_energy(power=2),
               derivation=Derivation([_homogeneity(2)])),
        Mutant("norm_preserved_by_step", "a discrete step preserves ||w||^2 exactly", make_energy(step=lambda eta, gg: 0.0 * gg)),
        Mutant("step_grows_by_eta", "a step grows ||w||^2 by eta ||grad||^2 (not eta^2)", make_energy(step=lambda eta, gg: eta * gg)),
    ],
)
