"""Back-propagation lemmas from H. I. Koo's lecture "Neural Network - Back-propagation" (formalisations B1-B4).

B1 block backward of a layer Y = W X + b, V = phi(Y) (the lecture's "block-based representation"):
   dL/dX = W^T dL/dY, dL/dY = phi'(Y) o dL/dV, dL/dW = dL/dY X^T, dL/db = dL/dY summed over the batch.
B2 quadratic forms (the lecture's "Basic Math" slide): d(x^T A x)/dx = x^T (A + A^T), d(x^T A x)/dA = x x^T.
B3 max routes the gradient to the maximiser (with explicit tie conventions).
B4 saliency (Simonyan et al., as presented in the lecture): S(I) ~ w I + b with w = dS/dI; for a bias-free
   ReLU network the model is exact with b = 0 (Euler's identity for positively homogeneous maps).

Conventions found by running JAX 0.x (float64) and SymPy 1.14, stated because they differ:

* ``jax.grad(jnp.maximum)`` at a tie x == y gives 1/2 to each argument; ``jnp.max`` over k tied entries
  gives 1/k to each; ``lax.reduce_window`` max-pooling gives the whole gradient to the FIRST maximiser.
* ReLU'(0): ``jax.nn.relu``, ``jnp.where(y > 0, y, 0)`` and ``xp.relu`` give 0; ``jnp.maximum(y, 0)``
  gives 1/2 (``xp.relu`` was once written that way; this family's search found it). SymPy: d Max(0, y)/dy = Heaviside(y) with Heaviside(0) = 1/2, and
  d Max(a, b, c)/da = Heaviside(a - Max(b, c)), which is 1/2 at a three-way tie (the three partials then sum
  to 3/2, not 1).
* SymPy's MatrixSymbol calculus is silently wrong on element access: ``diff((x.T*A*x)[0, 0], x)`` and
  ``diff(Trace(A) + Trace(A**2), A)`` both return 0. ``Agrees`` against jax.grad flags both (mutants below).
"""

from __future__ import annotations

import numpy as np
import sympy as sp
from hypothesis import strategies as st

from theorems.sources import KOO
from verify import (
    ALL_SIZES,
    Agrees,
    Assumption,
    Cases,
    Derivation,
    Equal,
    Mutant,
    Theorem,
    Tolerance,
    residual,
    up_to,
    xp,
)

SOURCE = KOO

RELU_CONVENTION = (
    "ReLU'(0) = 0 in every hand-written backward and in the autodiff forward (jnp.where(y > 0, y, 0), like "
    "jax.nn.relu). Beware: jax.grad of jnp.maximum(y, 0) is 1/2 at y = 0, and SymPy's Heaviside(0) = 1/2."
)

# Rounding: both sides of every comparison are sums of products of the same terms taken in different orders;
# `scale` is computed by running the same computation on absolute values (|W|, |X|, |phi'|, |dL/dV|, ...), so
# the float64 error is <= (number of terms along a path, <= ~50 here) * eps * scale ~ 1e-14 * scale.
TOLERANCE = Tolerance(
    atol=0.0, rtol=1e-11,
    reason="sums of <= ~50 products in different orders, scale = the same computation on absolute values: "
           "error <= 50 eps * scale ~ 1e-14 * scale; rtol 1e-11 leaves ~1000x",
)


def _step(y):
    """[y > 0] as a float (ReLU'(y) with ReLU'(0) = 0)."""
    return xp.where(y > 0, 1.0, 0.0)


ACTS = ("relu", "tanh", "identity")


def phi(act, y):
    if act == "relu":
        return xp.where(y > 0, y, 0.0)
    if act == "tanh":
        return xp.tanh(y)
    return y


def dphi(act, y, v):
    """phi'(Y) given Y and V = phi(Y)."""
    if act == "relu":
        return _step(y)
    if act == "tanh":
        return 1.0 - v * v
    return xp.ones(y.shape)


# ============================================================================ B1 block backward

NET = st.fixed_dictionaries({
    "widths": st.lists(st.integers(1, 4), min_size=2, max_size=4).map(tuple),  # depth 1-3
    "B": st.integers(1, 3),
    "act": st.sampled_from(ACTS),
})


def net_instance(rng, s):
    w = s.widths
    x = {"X": rng.reals((w[0], s.B)), "C": rng.reals((w[-1], s.B)), "Q": rng.reals((w[-1], s.B))}
    for l in range(len(w) - 1):
        x[f"W{l}"] = rng.reals((w[l + 1], w[l]))
        x[f"b{l}"] = rng.reals((w[l + 1],))
    return x


def _forward(s, params, X):
    """Layer by layer: returns the inputs X_l, pre-activations Y_l, outputs V_l."""
    Xs, Ys, Vs = [], [], []
    h = X
    for l in range(len(s.widths) - 1):
        Y = params[f"W{l}"] @ h + params[f"b{l}"][:, None]
        V = phi(s.act, Y)
        Xs.append(h), Ys.append(Y), Vs.append(V)
        h = V
    return Xs, Ys, Vs


def _loss(x, V):
    """L = sum(C o V) + sum(Q o V o V)/2, so dL/dV = C + Q o V."""
    return xp.sum(x["C"] * V) + 0.5 * xp.sum(x["Q"] * V * V)


def block_backward(s, x, *, wt=True, use_dphi=True, xt=True, sum_b=True, absolute=False):
    """The lecture's block backward, written by hand over xp. Flags select the mutants; ``absolute``
    runs it on |W|, |X|, |phi'|, |dL/dV| (the size of the terms summed, for the tolerance scale)."""
    ab = xp.abs if absolute else (lambda a: a)
    Xs, Ys, Vs = _forward(s, x, x["X"])
    G = ab(x["C"]) + ab(x["Q"]) * ab(Vs[-1])  # dL/dV of the top layer
    grads = {}
    for l in reversed(range(len(s.widths) - 1)):
        W, Xl = ab(x[f"W{l}"]), ab(Xs[l])
        dY = ab(dphi(s.act, Ys[l], Vs[l])) * G if use_dphi else G
        n_out, n_in = W.shape
        grads[f"W{l}"] = dY @ xp.transpose(Xl) if xt else xp.reshape(Xl @ xp.transpose(dY), (n_out, n_in))
        grads[f"b{l}"] = xp.sum(dY, axis=1) if sum_b else xp.sum(dY, axis=1) / s.B
        Wt = xp.transpose(W) if wt else xp.reshape(W, (n_in, n_out))
        G = Wt @ dY
    grads["X"] = G
    return grads


def _params(s):
    names = ["X"]
    for l in range(len(s.widths) - 1):
        names += [f"W{l}", f"b{l}"]
    return names


def forward_mode_gradient(s, x, absolute=False):
    """Forward mode (an independent algorithm): the tangent of L along every unit direction of every
    parameter entry at once (a leading axis over the entries), i.e. the gradient entry by entry.
    ``absolute`` runs it on absolute values (the size of the terms summed)."""
    ab = xp.abs if absolute else (lambda a: a)
    names = _params(s)
    shapes = [x[n].shape for n in names]
    sizes = [int(np.prod(sh)) for sh in shapes]
    Np = sum(sizes)
    D = xp.eye(Np)
    dirs, off = {}, 0
    for n, sh, k in zip(names, shapes, sizes):
        dirs[n] = xp.reshape(D[:, off:off + k], (Np, *sh))
        off += k
    Xs, Ys, Vs = _forward(s, x, x["X"])
    t = dirs["X"]
    for l in range(len(s.widths) - 1):
        dY = dirs[f"W{l}"] @ ab(Xs[l]) + ab(x[f"W{l}"]) @ t + dirs[f"b{l}"][:, :, None]
        t = ab(dphi(s.act, Ys[l], Vs[l])) * dY
    flat = xp.sum((ab(x["C"]) + ab(x["Q"]) * ab(Vs[-1])) * t, axis=(1, 2))
    out, off = {}, 0
    for n, sh, k in zip(names, shapes, sizes):
        out[n] = xp.reshape(flat[off:off + k], sh)
        off += k
    return out


def make_block_claim(**flags):
    def prop(s, x):
        hand = block_backward(s, x, **flags)
        size = block_backward(s, x, absolute=True)
        fwd = forward_mode_gradient(s, x)
        fsize = forward_mode_gradient(s, x, absolute=True)
        out = {f"forward_mode_{n}": residual(hand[n], fwd[n], size[n] + fsize[n]) for n in _params(s)}

        def L(p):
            return _loss(p, _forward(s, p, p["X"])[2][-1])

        # the claim is about jax.grad itself: float64 only
        auto = xp.float64_only(lambda: xp.jax.grad(L)({n: x[n] for n in _params(s)} | {"C": x["C"], "Q": x["Q"]}))
        for n in _params(s):
            out[f"autodiff_{n}"] = xp.float64_only(lambda n=n: residual(hand[n], auto[n], size[n]))
        return out

    return prop


# --- symbolic: one layer, explicit symbols, every (n_in, n_out, batch) up to 2

_phi = sp.Function("phi")
_u = sp.Symbol("u", real=True)


def _dphi_sym(y):
    return sp.diff(_phi(_u), _u).subs(_u, y)


def _layer_step(n_in, n_out, B):
    W = sp.Matrix(n_out, n_in, lambda i, j: sp.Symbol(f"w_{i}{j}", real=True))
    X = sp.Matrix(n_in, B, lambda i, j: sp.Symbol(f"x_{i}{j}", real=True))
    b = sp.Matrix(n_out, 1, lambda i, j: sp.Symbol(f"b_{i}", real=True))
    G = sp.Matrix(n_out, B, lambda i, j: sp.Symbol(f"g_{i}{j}", real=True))  # dL/dV, arbitrary
    Y = W * X + b * sp.ones(1, B)
    L = sum(G[i, j] * _phi(Y[i, j]) for i in range(n_out) for j in range(B))
    dY = sp.Matrix(n_out, B, lambda i, j: _dphi_sym(Y[i, j]) * G[i, j])
    claim = {"X": W.T * dY, "W": dY * X.T, "b": dY * sp.ones(B, 1)}
    lhs, rhs = 0, 0
    for name, M in (("X", X), ("W", W), ("b", b)):
        for i in range(M.rows):
            for j in range(M.cols):
                t = sp.Symbol(f"t_{name}{i}{j}")
                lhs += t * sp.diff(L, M[i, j])
                rhs += t * claim[name][i, j]
    return Equal(lhs, rhs, why=f"n_in={n_in}, n_out={n_out}, batch={B}: SymPy's partial derivatives of "
                               "L = <G, phi(W X + b 1^T)> (G = dL/dV arbitrary: by the chain rule L enters only "
                               "through dL/dV) equal W^T dL/dY, dL/dY X^T, dL/dY 1 with dL/dY = phi'(Y) o G")


def _agrees_layer():
    """SymPy's derivative of a concrete tanh layer vs jax.grad (a cross-check of the symbolic engine itself)."""
    W = sp.Matrix(2, 3, lambda i, j: sp.Symbol(f"w_{i}{j}", real=True))
    X = sp.Matrix(3, 2, lambda i, j: sp.Symbol(f"x_{i}{j}", real=True))
    L = sum(sp.tanh((W * X)[i, j]) * (i + 2 * j + 1) for i in range(2) for j in range(2))
    syms = list(W) + list(X)
    dW = sp.Matrix(2, 3, lambda i, j: sp.diff(L, W[i, j]))

    def fn(*vals):
        Wn = xp.asarray(vals[:6]).reshape(2, 3)
        Xn = xp.asarray(vals[6:]).reshape(3, 2)
        Gc = xp.asarray([[1.0, 3.0], [2.0, 4.0]])
        return np.asarray(xp.jax.grad(lambda w: xp.sum(xp.tanh(w @ Xn) * Gc))(Wn))

    return Agrees(dW, syms, fn, why="SymPy's dL/dW for a 2x3 tanh layer, batch 2, agrees with jax.grad")


block_derivation = Derivation(
    scope=up_to(2),
    steps=[*[_layer_step(a, b, c) for a in (1, 2) for b in (1, 2) for c in (1, 2)], _agrees_layer()],
)

block_layer = Theorem(
    id="koo.backprop.block-layer",
    title="Block backward of a layer Y = W X + b, V = phi(Y); a hand-written backward pass equals jax.grad",
    source=SOURCE.at("'Block-based representation'", formalisation="b1"),
    statement=(
        r"For a layer $Y = W X + b\mathbf{1}^\top$, $V = \varphi(Y)$ on a batch $X$ (one column per example): "
        r"$\partial L/\partial Y = \varphi'(Y) \circ \partial L/\partial V$, $\partial L/\partial X = W^\top \partial L/\partial Y$, "
        r"$\partial L/\partial W = (\partial L/\partial Y) X^\top$, $\partial L/\partial b = (\partial L/\partial Y)\mathbf{1}$ "
        r"(summed over the batch). Applied layer by layer (dL/dX of layer l is dL/dV of layer l-1) it gives the "
        r"gradient of any deep network: checked against jax.grad and against forward-mode tangents on random "
        r"networks of depth 1-3, widths 1-4, batch 1-3, phi in {ReLU, tanh, identity}, "
        r"$L = \sum C \circ V + \frac12 \sum Q \circ V \circ V$."
    ),
    property=make_block_claim(),
    structure=NET,
    sample=net_instance,
    tolerance=TOLERANCE,
    derivation=block_derivation,
    conventions=RELU_CONVENTION + " Symbolic scope: one layer with an arbitrary differentiable phi and every "
                "n_in, n_out, batch <= 2; depth follows by composition (the chain rule), checked numerically.",
    mutants=[
        Mutant("w_not_transposed", "dL/dX = W dL/dY (W read as n_in x n_out without transposing)",
               make_block_claim(wt=False)),
        Mutant("missing_dphi", "dL/dY = dL/dV (the phi'(Y) factor dropped)", make_block_claim(use_dphi=False)),
        Mutant("wrong_outer_product", "dL/dW = X (dL/dY)^T read as n_out x n_in (outer product in the wrong order)",
               make_block_claim(xt=False)),
        Mutant("db_averaged", "dL/db = dL/dY averaged (not summed) over the batch", make_block_claim(sum_b=False)),
    ],
)


# ============================================================================ B2 quadratic forms

QUAD_SIZES = st.fixed_dictionaries({"n": st.integers(1, 4)})


def quad_instance(rng, s):
    n = s.n
    A = rng.reals((n, n))
    A = xp.where(rng.coin(0.3), 0.5 * (A + A.T), A)  # symmetric some of the time (for the variant)
    return {"x": rng.reals((n,)), "A": A}


def _quad(x, A):
    return xp.sum(x * (A @ x))


def make_quad_claim(gx=None, gA=None):
    gx = gx or (lambda x, A: (A + xp.transpose(A)) @ x)
    gA = gA or (lambda x, A: x[:, None] * x[None, :])

    def prop(s, x_):
        x, A = x_["x"], x_["A"]
        n = x.shape[0]
        ax, aA = xp.abs(x), xp.abs(A)
        Gx, GA = gx(x, A), gA(x, A)
        # exact polynomial identities along every unit direction (no autodiff, checkable at 50 digits):
        # f(x + e_i) - f(x) = (grad_x)_i + A_ii and f(x, A + E_ij) - f(x, A) = (grad_A)_ij (f is linear in A)
        I = xp.eye(n)
        Xp = x[None, :] + I
        fx = xp.sum(Xp * (Xp @ xp.transpose(A)), axis=1) - _quad(x, A) - xp.diagonal(A)
        aXp = ax[None, :] + I
        sx = xp.sum(aXp * (aXp @ xp.transpose(aA)), axis=1) + _quad(ax, aA) + xp.abs(xp.diagonal(A))
        E = xp.reshape(xp.eye(n * n), (n, n, n, n))
        fA = xp.sum(x[None, None, :, None] * (A[None, None] + E) * x[None, None, None, :], axis=(2, 3)) - _quad(x, A)
        sA = xp.sum(ax[None, None, :, None] * (aA[None, None] + E) * ax[None, None, None, :], axis=(2, 3)) + _quad(ax, aA)
        out = {"increment_x": residual(fx, Gx, sx), "increment_A": residual(fA, GA, sA)}
        # claims about jax.grad itself: float64 only
        out["autodiff_x"] = xp.float64_only(
            lambda: residual(xp.jax.grad(_quad, 0)(x, A), Gx, (aA + xp.transpose(aA)) @ ax))
        out["autodiff_A"] = xp.float64_only(
            lambda: residual(xp.jax.grad(_quad, 1)(x, A), GA, ax[:, None] * ax[None, :]))
        return out

    return prop


def _quad_steps(n):
    A = sp.Matrix(n, n, lambda i, j: sp.Symbol(f"a_{i}{j}", real=True))
    x = sp.Matrix(n, 1, lambda i, j: sp.Symbol(f"x_{i}", real=True))
    f = (x.T * A * x)[0, 0]
    t = sp.Matrix(1, n, lambda i, j: sp.Symbol(f"t_{j}"))
    T = sp.Matrix(n, n, lambda i, j: sp.Symbol(f"T_{i}{j}"))
    dx = sp.Matrix(1, n, lambda i, j: sp.diff(f, x[j]))
    dA = sp.Matrix(n, n, lambda i, j: sp.diff(f, A[i, j]))
    return [
        Equal((t * dx.T)[0, 0], (t * (x.T * (A + A.T)).T)[0, 0],
              why=f"n = {n}: d(x^T A x)/dx = x^T (A + A^T), entry by entry (explicit symbols)"),
        Equal(sum(T[i, j] * dA[i, j] for i in range(n) for j in range(n)),
              sum(T[i, j] * (x * x.T)[i, j] for i in range(n) for j in range(n)),
              why=f"n = {n}: d(x^T A x)/dA = x x^T, entry by entry"),
    ]


_XS, _AS = sp.MatrixSymbol("x", 3, 1), sp.MatrixSymbol("A", 3, 3)


def _jax_grad_x(x, A):
    return np.asarray(xp.jax.grad(lambda v: v @ xp.asarray(A) @ v)(xp.asarray(x[:, 0])))[:, None]


def _jax_grad_A(x, A):
    xv = xp.asarray(x[:, 0])
    return np.asarray(xp.jax.grad(lambda M: xv @ M @ xv)(xp.asarray(A)))


quad_derivation = Derivation(
    scope=up_to(3),
    steps=[
        *[st_ for n in (1, 2, 3) for st_ in _quad_steps(n)],
        Agrees(sp.diff(_XS.T * _AS * _XS, _XS), [_XS, _AS], _jax_grad_x,
               why="SymPy's MatrixSymbol derivative of the 1x1 expression x^T A x (A x + A^T x) agrees with jax.grad"),
        Agrees(_XS * _XS.T, [_XS, _AS], _jax_grad_A, why="x x^T agrees with jax.grad over A"),
    ],
)

_quad_mutants = [
    Mutant("two_a_x", "d(x^T A x)/dx = 2 A x (assumes A symmetric)", make_quad_claim(gx=lambda x, A: 2.0 * (A @ x))),
    Mutant("a_x_only", "d(x^T A x)/dx = A x", make_quad_claim(gx=lambda x, A: A @ x)),
    Mutant("x_transpose_x", "d(x^T A x)/dA = x^T x (the inner product, in every entry)",
           make_quad_claim(gA=lambda x, A: xp.sum(x * x) * xp.ones(A.shape))),
    Mutant("sympy_matrixsymbol_dx",
           "d(x^T A x)/dx as SymPy computes it from the matrix element: diff((x.T*A*x)[0, 0], x) = 0",
           make_quad_claim(gx=lambda x, A: 0.0 * x),
           derivation=Derivation([Agrees(sp.diff((_XS.T * _AS * _XS)[0, 0], _XS), [_XS, _AS], _jax_grad_x,
                                         why="SymPy 1.14 returns 0 for diff((x.T*A*x)[0,0], x)")])),
    Mutant("sympy_matrixsymbol_da",
           "d(x^T A x)/dA as SymPy computes it from the matrix element: diff((x.T*A*x)[0, 0], A) = 0",
           make_quad_claim(gA=lambda x, A: 0.0 * A),
           derivation=Derivation([Agrees(sp.diff((_XS.T * _AS * _XS)[0, 0], _AS), [_XS, _AS], _jax_grad_A,
                                         why="SymPy 1.14 returns 0 for diff((x.T*A*x)[0,0], A)")])),
]

quadratic_form = Theorem(
    id="koo.backprop.quadratic-form",
    title="Derivatives of a quadratic form: d(x^T A x)/dx = x^T (A + A^T), d(x^T A x)/dA = x x^T",
    source=SOURCE.at("'Block-based perspective: Basic Math'", formalisation="b2"),
    statement=(
        r"For $x \in \mathbb{R}^n$ and any (not necessarily symmetric) $A \in \mathbb{R}^{n\times n}$: "
        r"$\partial (x^\top A x)/\partial x = x^\top (A + A^\top)$ and $\partial (x^\top A x)/\partial A = x x^\top$."
    ),
    property=make_quad_claim(),
    structure=QUAD_SIZES,
    sample=quad_instance,
    tolerance=TOLERANCE,
    derivation=quad_derivation,
    conventions="Gradients in numerator layout as in the lecture (row vector for d/dx); compared entrywise. "
                "Symbolic scope: explicit symbols for n <= 3; numeric n <= 4. SymPy's MatrixSymbol derivative "
                "of an element access (x.T*A*x)[0,0] is silently 0: caught by Agrees (mutants sympy_matrixsymbol_*).",
    mutants=_quad_mutants,
)


def _symmetric(s, x):
    return xp.all(x["A"] == xp.transpose(x["A"]))


def _symmetric_step(n):
    A = sp.Matrix(n, n, lambda i, j: sp.Symbol(f"a_{min(i, j)}{max(i, j)}", real=True))
    x = sp.Matrix(n, 1, lambda i, j: sp.Symbol(f"x_{i}", real=True))
    t = sp.Matrix(n, 1, lambda i, j: sp.Symbol(f"t_{i}"))
    f = (x.T * A * x)[0, 0]
    grad = sp.Matrix(n, 1, lambda i, j: sp.diff(f, x[i]))
    return Equal((t.T * grad)[0, 0], (t.T * 2 * A * x)[0, 0],
                 why=f"n = {n}: with a_ij = a_ji (explicit symmetric symbols), d(x^T A x)/dx = 2 A x")


quadratic_form_symmetric = Theorem(
    id="koo.backprop.quadratic-form.symmetric",
    title="For symmetric A, d(x^T A x)/dx = 2 A x",
    source=SOURCE.at("quadratic forms, the symmetric special case", formalisation="b2"),
    statement=r"If $A = A^\top$ then $\partial (x^\top A x)/\partial x = 2 x^\top A$.",
    property=make_quad_claim(gx=lambda x, A: 2.0 * (A @ x)),
    structure=QUAD_SIZES,
    sample=quad_instance,
    tolerance=TOLERANCE,
    assumptions=[Assumption("symmetric_a", "A equals its transpose exactly", _symmetric)],
    derivation=Derivation(scope=up_to(3), steps=[_symmetric_step(n) for n in (1, 2, 3)]),
    uses=["koo.backprop.quadratic-form"],
    mutants=[Mutant("a_x_only", "d(x^T A x)/dx = A x", make_quad_claim(gx=lambda x, A: A @ x))],
)


# ============================================================================ B3 max routes the gradient

POOL = st.fixed_dictionaries({"K": st.integers(1, 3), "P": st.integers(2, 3)})


def max_instance(rng, s):
    K, P = s.K, s.P
    x = rng.reals(())
    y = xp.where(rng.coin(0.3), x, rng.reals(()))  # ties as a drawn case
    r = xp.where(rng.coin(0.3), 0.0, rng.reals(()))
    ints = rng.integers(-1, 2, (K * P,)).astype(xp.float64)
    v = xp.where(rng.coin(0.5), ints, rng.reals((K * P,)))
    return {"x": x, "y": y, "r": r, "v": v, "g": rng.normal((K,))}


def _first_onehot(V):
    """[position == first arg-max] per window (K x P), as floats."""
    idx = xp.argmax(V, axis=1)
    P = V.shape[1]
    cols = np.arange(P)[None, :]
    return xp.where(cols == idx[:, None], 1.0, 0.0)


def _pool_value(v, g, K, P):
    return xp.sum(g * xp.max(xp.reshape(v, (K, P)), axis=1))


def _reduce_window_pool(v, g, P):
    lax = xp.jax.lax  # a claim about lax.reduce_window itself (float64 only)
    return xp.sum(g * lax.reduce_window(v, -xp.inf, lax.max, (P,), (P,), "VALID"))


def _no_ties(s, x):
    V = xp.reshape(x["v"], (s.K, s.P))
    m = xp.max(V, axis=1)
    return xp.all(xp.sum(xp.where(V == m[:, None], 1.0, 0.0), axis=1) == 1.0)


def make_max_claim(left=None, jax_tie=0.5, relu_tie=0.5, route=None):
    """left(x, y): claimed left derivative; jax_tie: jax.grad(jnp.maximum)(x, x) claimed; relu_tie:
    jax.grad(lambda t: jnp.maximum(t, 0))(0) claimed; route(V, g): claimed max-pool gradient (K x P)."""
    left = left or (lambda x, y: xp.where(x > y, 1.0, 0.0))
    route = route or (lambda V, g: g[:, None] * _first_onehot(V))

    def prop(s, x_):
        K, P = s.K, s.P
        x, y, r, v, g = (x_[k] for k in ("x", "y", "r", "v", "g"))
        size = xp.abs(x) + xp.abs(y)
        h = xp.where(x != y, xp.abs(x - y) / 4.0, 1.0)
        out = {
            # one-sided derivatives, exactly: right = 1[x >= y], left = 1[x > y] (h below the gap)
            "right_derivative": residual(xp.maximum(x + h, y) - xp.maximum(x, y), h * xp.where(x >= y, 1.0, 0.0),
                                         size + h),
            "left_derivative": residual(xp.maximum(x, y) - xp.maximum(x - h, y), h * left(x, y), size + h),
        }
        V = xp.reshape(v, (K, P))
        R = route(V, g)
        m = xp.max(V, axis=1)
        below = m[:, None] - V
        gap = xp.min(xp.where(below > 0, below, xp.inf))
        gap = xp.where(gap < xp.inf, gap, 1.0)
        hp = gap / 4.0
        # right derivative along every unit direction e_i, exactly (hp is below every gap to a non-maximum)
        Vp = V[None, :, :] + hp * xp.reshape(xp.eye(K * P), (K * P, K, P))
        lhs = xp.sum(g[None, :] * xp.max(Vp, axis=2), axis=1) - _pool_value(v, g, K, P)
        out["pool_right_derivative"] = residual(lhs, hp * xp.reshape(R, (K * P,)),
                                                xp.sum(xp.abs(g) * (xp.abs(m) + hp)) * 2.0)
        # claims about JAX's own derivatives: float64 only
        tie = xp.where(x == y, 1.0, 0.0)
        dmx = xp.float64_only(lambda: xp.jax.grad(xp.jax.numpy.maximum, argnums=(0, 1))(x, y))
        out["jax_maximum_dx"] = xp.float64_only(
            lambda: residual(dmx[0], xp.where(x > y, 1.0, 0.0) + jax_tie * tie, 1.0))
        out["jax_maximum_dy"] = xp.float64_only(
            lambda: residual(dmx[1], xp.where(y > x, 1.0, 0.0) + (1.0 - jax_tie) * tie, 1.0))
        out["jax_nn_relu"] = xp.float64_only(lambda: residual(xp.jax.grad(xp.jax.nn.relu)(r), _step(r), 1.0))
        out["jax_maximum_relu"] = xp.float64_only(
            lambda: residual(xp.jax.grad(lambda t: xp.jax.numpy.maximum(t, 0.0))(r),
                             _step(r) + relu_tie * xp.where(r == 0, 1.0, 0.0), 1.0))
        aG = xp.abs(g)[:, None] * xp.ones((K, P))
        out["pool_jnp_max"] = xp.float64_only(
            lambda: residual(xp.reshape(xp.jax.grad(_pool_value)(v, g, K, P), (K, P)), R, aG))
        out["pool_reduce_window"] = xp.float64_only(
            lambda: residual(xp.reshape(xp.jax.grad(_reduce_window_pool)(v, g, P), (K, P)), R, aG))
        return out

    return prop


_x, _y, _z, _c = sp.symbols("x y z c", real=True)
_t = sp.Symbol("y", real=True)
max_derivation = Derivation(
    scope=ALL_SIZES,
    steps=[
        Cases(sp.diff(sp.Max(_x, _y), _x),
              sp.Piecewise((1, _x > _y), (sp.Rational(1, 2), sp.Eq(_x, _y)), (0, True)), over=[_x, _y],
              why="SymPy: d max(x, y)/dx = Heaviside(x - y): 1 if x > y, 0 if x < y, and 1/2 at a tie "
                  "(Heaviside(0) = 1/2, the same value jax.grad(jnp.maximum) returns)"),
        Cases(sp.Max(_x, _y), _y + sp.Max(_x - _y, 0), over=[_x, _y],
              why="max(x, y) = y + ReLU(x - y): right derivative in x is ReLU's right derivative at x - y, "
                  "i.e. 1[x >= y]; the left one is 1[x > y]"),
        Cases(sp.diff(sp.Max(_x, _y, _z), _x) * sp.Piecewise((0, sp.Eq(_x, _y) | sp.Eq(_x, _z) | sp.Eq(_y, _z)), (1, True)),
              sp.Piecewise((1, (_x > _y) & (_x > _z)), (0, True)) * sp.Piecewise((0, sp.Eq(_x, _y) | sp.Eq(_x, _z) | sp.Eq(_y, _z)), (1, True)),
              over=[_x, _y, _z],
              why="a window of 3 without ties: d max/dx = 1 iff x is the arg-max (13 weak orderings; the tied ones "
                  "are masked: there SymPy's Heaviside gives 1/2 each, summing to 3/2 at a triple tie)"),
        Cases(sp.diff(sp.Max(_t, 0), _t) * _t, sp.Max(_t, 0), over=[_t],
              why="ReLU'(y) y = ReLU(y) whatever ReLU'(0) is (SymPy uses Heaviside(0) = 1/2; JAX's jax.nn.relu 0)"),
    ],
)

max_routing = Theorem(
    id="koo.backprop.max-routing",
    title="max routes the gradient to the maximiser; max-pooling passes it to the arg-max position only",
    source=SOURCE.at("the routing rule of max units", formalisation="b3"),
    statement=(
        r"$\partial^+ \max(x, y)/\partial x = \mathbf{1}[x \ge y]$ (right derivative), $\partial^- = \mathbf{1}[x > y]$; "
        r"at a tie jax.grad(jnp.maximum) returns 1/2 to each argument (the mean of the one-sided derivatives). "
        r"ReLU'(0): jax.nn.relu gives 0, jax.grad of jnp.maximum(y, 0) gives 1/2, SymPy's Heaviside(0) is 1/2. "
        r"For max-pooling over non-overlapping windows with no tied maximum, $\partial \sum_j g_j \max_{i \in w_j} v_i / "
        r"\partial v = g_j$ at the arg-max of window $j$ and 0 elsewhere (\texttt{jnp.max} and \texttt{lax.reduce\_window} agree)."
    ),
    property=make_max_claim(),
    structure=POOL,
    sample=max_instance,
    tolerance=TOLERANCE,
    assumptions=[Assumption("no_ties", "every pooling window has a unique maximum", _no_ties)],
    derivation=max_derivation,
    conventions=(
        "Ties (measured, JAX float64): jax.grad(jnp.maximum)(x, x) = (1/2, 1/2); jnp.max over k tied entries gives "
        "1/k to each; lax.reduce_window max-pooling gives all of it to the first maximiser. ReLU'(0) = 0 for "
        "jax.nn.relu and jnp.where(y > 0, y, 0), 1/2 for jnp.maximum(y, 0) (hence for verify's xp.relu under "
        "jax.grad); SymPy: Heaviside(0) = 1/2 and d Max(a,b,c)/da = 1/2 at a triple tie. The pooling claim "
        "routes to the first arg-max, which is JAX's reduce_window convention; with ties the derivative does "
        "not exist and jnp.max disagrees (ablation of no_ties)."
    ),
    mutants=[
        Mutant("tie_gradient_to_x", "jax.grad(jnp.maximum)(x, x) gives 1 to x (the rule 1[x >= y] as autodiff's convention)",
               make_max_claim(jax_tie=1.0)),
        Mutant("left_derivative_ge", "the left derivative of max(x, y) in x is also 1[x >= y]",
               make_max_claim(left=lambda x, y: xp.where(x >= y, 1.0, 0.0))),
        Mutant("relu_maximum_zero", "jax.grad of jnp.maximum(y, 0) at y = 0 is 0 (as for jax.nn.relu)",
               make_max_claim(relu_tie=0.0)),
        Mutant("pool_average", "max-pooling spreads the gradient g_j / P over the window",
               make_max_claim(route=lambda V, g: g[:, None] * xp.ones(V.shape) / V.shape[1])),
        Mutant("pool_ignores_upstream", "max-pooling passes 1 (not the upstream g_j) to the arg-max",
               make_max_claim(route=lambda V, g: _first_onehot(V))),
    ],
)


# ============================================================================ B4 saliency

SALIENCY_NETS = st.fixed_dictionaries({
    "widths": st.lists(st.integers(1, 3), min_size=2, max_size=4).map(tuple),  # input, hidden layers
})


def sal_instance(rng, s, bias_p=0.5):
    w = s.widths
    biased = rng.coin(bias_p)
    x = {"I": rng.reals((w[0],)), "u": rng.normal((w[-1],)), "c": xp.where(biased, rng.normal(()), 0.0),
         "d": rng.normal((w[0],)), "t": 10.0 ** rng.uniform((), -8.0, 1.0)}
    for l in range(len(w) - 1):
        x[f"W{l}"] = rng.reals((w[l + 1], w[l]))
        x[f"b{l}"] = xp.where(biased, rng.normal((w[l + 1],)), 0.0)
    # on a kink some of the time: integer input and first layer, b0[0] = -(W0 I)[0] exactly
    kink = rng.coin(0.25)
    Ii = rng.integers(-2, 3, (w[0],)).astype(xp.float64)
    Wi = rng.integers(-2, 3, (w[1], w[0])).astype(xp.float64)
    x["I"] = xp.where(kink, Ii, x["I"])
    x["W0"] = xp.where(kink, Wi, x["W0"])
    x["b0"] = xp.where(kink, x["b0"].at[0].set(-(Wi @ Ii)[0]), x["b0"])
    return x


def _score(s, x, I, act="relu", absolute=False):
    ab = xp.abs if absolute else (lambda a: a)
    h, pre = ab(I), []
    for l in range(len(s.widths) - 1):
        y = ab(x[f"W{l}"]) @ h + ab(x[f"b{l}"])
        pre.append(y)
        h = y if absolute else phi(act, y)
    return xp.sum(ab(x["u"]) * h) + ab(x["c"]), pre


def saliency(s, x, I, act="relu", relu0=0.0):
    """dS/dI by the block backward (hand-written, xp); ReLU'(0) = relu0."""
    h, Ys, Vs = I, [], []
    for l in range(len(s.widths) - 1):
        y = x[f"W{l}"] @ h + x[f"b{l}"]
        v = phi(act, y)
        Ys.append(y), Vs.append(v)
        h = v
    G = x["u"]
    for l in reversed(range(len(s.widths) - 1)):
        d = dphi(act, Ys[l], Vs[l])
        if act == "relu":
            d = d + relu0 * xp.where(Ys[l] == 0, 1.0, 0.0)
        G = xp.transpose(x[f"W{l}"]) @ (d * G)
    return G


def make_saliency_claim(factor=1.0, act="relu", times_input=True):
    def prop(s, x):
        I = x["I"]
        S, _ = _score(s, x, I, act)
        scale = _score(s, x, I, act, absolute=True)[0]
        w = saliency(s, x, I, act)
        dot = (lambda g: factor * xp.sum(g * I)) if times_input else (lambda g: xp.sum(g))
        if not times_input:
            scale = scale + xp.sum(xp.abs(w))
        out = {"hand": residual(S, dot(w), scale)}
        out["autodiff"] = xp.float64_only(  # about jax.grad itself
            lambda: residual(S, dot(xp.jax.grad(lambda i: _score(s, x, i, act)[0])(I)), scale))
        return out

    return prop


def _bias_free(s, x):
    z = [xp.all(x[f"b{l}"] == 0) for l in range(len(s.widths) - 1)]
    return xp.all(xp.stack(z + [x["c"] == 0]))


_lam = sp.Symbol("lambda", positive=True)
_Wn, _hn, _yn, _Dn = sp.symbols("W h y D", commutative=False)
saliency_derivation = Derivation(
    scope=ALL_SIZES,
    steps=[
        Cases(sp.Max(_lam * _t, 0), _lam * sp.Max(_t, 0), over=[_t],
              why="ReLU is positively homogeneous: ReLU(lambda y) = lambda ReLU(y) for lambda > 0; so is every "
                  "bias-free layer h -> ReLU(W h), hence S(lambda I) = lambda S(I) (composition)"),
        Cases(sp.Piecewise((1, _t > 0), (_c, sp.Eq(_t, 0)), (0, True)) * _t, sp.Max(_t, 0), over=[_t],
              why="ReLU'(y) y = ReLU(y) for ANY value c = ReLU'(0) (JAX: 0, SymPy: 1/2)"),
        Equal(_Dn * (_Wn * _hn), _Dn * _yn - _Dn * (_yn - _Wn * _hn),
              why="forward-mode tangent along I: t_0 = I, t_l = D_l W_l t_{l-1} with D_l = diag ReLU'(y_l); if "
                  "t_{l-1} = h_{l-1} then t_l = D_l y_l (bias-free: y_l = W_l h_{l-1}) = ReLU(y_l) = h_l by the "
                  "step above; so grad S(I) . I = t_L-score = S(I) for every depth and width (induction)"),
    ],
)

saliency_homogeneous = Theorem(
    id="koo.backprop.saliency-homogeneous",
    title="Saliency of a bias-free ReLU network is exact: S(I) = grad S(I) . I",
    source=SOURCE.at("saliency: S_c(I) ~ w I + b, w = dS_c/dI at I_0", formalisation="b4"),
    statement=(
        r"For $S(I) = u^\top \mathrm{ReLU}(W_L \cdots \mathrm{ReLU}(W_1 I))$ (no biases) and every $I$: "
        r"$S(I) = \nabla S(I) \cdot I$, for any value of ReLU'(0). So the lecture's linear model $S \approx w I + b$ "
        r"with $w = \partial S/\partial I|_{I}$ holds exactly at $I$ with $b = 0$."
    ),
    property=make_saliency_claim(),
    structure=SALIENCY_NETS,
    sample=sal_instance,
    tolerance=TOLERANCE,
    assumptions=[Assumption("bias_free", "every layer bias and the output bias are exactly 0", _bias_free)],
    derivation=saliency_derivation,
    conventions=RELU_CONVENTION + " The identity holds for any ReLU'(0) (the unit's pre-activation is then 0).",
    uses=["koo.backprop.block-layer"],
    mutants=[
        Mutant("degree_two", "S(I) = 2 grad S(I) . I (homogeneity of degree 2)", make_saliency_claim(factor=2.0)),
        Mutant("gradient_sum", "S(I) = sum_i dS/dI_i (the gradient not multiplied by I)",
               make_saliency_claim(times_input=False)),
        Mutant("tanh_network", "the same identity for a bias-free tanh network", make_saliency_claim(act="tanh")),
    ],
)


def _with_bias(rng, s):
    return sal_instance(rng, s, bias_p=1.0)


saliency_with_bias = Theorem(
    id="koo.backprop.saliency-with-bias",
    title="Non-theorem: with biases, S(I) = grad S(I) . I fails (the local model needs the offset b)",
    source=SOURCE.at("saliency with biases (stated non-theorem)", formalisation="b4"),
    statement=r"(False) For a ReLU network with nonzero biases, $S(I) = \nabla S(I) \cdot I$.",
    property=make_saliency_claim(),
    structure=SALIENCY_NETS,
    sample=_with_bias,
    tolerance=TOLERANCE,
    expect="false",
    conventions=RELU_CONVENTION,
    uses=["koo.backprop.saliency-homogeneous"],
)


# --- with biases: S is affine on each activation region

def _pattern_same(s, x):
    _, pre0 = _score(s, x, x["I"])
    _, pre1 = _score(s, x, x["I"] + x["t"] * x["d"])
    same = [xp.all((a > 0) == (b > 0)) for a, b in zip(pre0, pre1)]
    return xp.all(xp.stack(same))


def make_local_linear(relu0=0.0):
    def prop(s, x):
        I, J = x["I"], x["I"] + x["t"] * x["d"]
        S0, _ = _score(s, x, I)
        S1, _ = _score(s, x, J)
        w = saliency(s, x, I, relu0=relu0)
        scale = _score(s, x, I, absolute=True)[0] + _score(s, x, J, absolute=True)[0] + \
            _score(s, x, xp.abs(J - I), absolute=True)[0]
        out = {"hand": residual(S1, S0 + xp.sum(w * (J - I)), scale)}
        if relu0 == 0.0:  # about jax.grad itself: float64 only
            out["autodiff"] = xp.float64_only(lambda: residual(
                S1, S0 + xp.sum(xp.jax.grad(lambda i: _score(s, x, i)[0])(I) * (J - I)), scale))
        return out

    return prop


saliency_local_linear = Theorem(
    id="koo.backprop.saliency-local-linear",
    title="With biases, S(I') = S(I) + grad S(I) . (I' - I) on the activation region of I",
    source=SOURCE.at("saliency: the local linear model S_c(I) ~ w I + b", formalisation="b4"),
    statement=(
        r"For a ReLU network with biases, if every pre-activation has the same sign pattern $[y > 0]$ at $I$ and "
        r"$I'$, then $S(I') = S(I) + \nabla S(I) \cdot (I' - I)$ exactly, i.e. $S = w I + b$ on the region with "
        r"$w = \nabla S(I)$, $b = S(I) - w I$; with the convention ReLU'(0) = 0 (pattern [y > 0])."
    ),
    property=make_local_linear(),
    structure=SALIENCY_NETS,
    sample=sal_instance,
    tolerance=TOLERANCE,
    assumptions=[Assumption("same_region", "I and I' = I + t d have the same activation pattern [y > 0] in every layer",
                            _pattern_same)],
    derivation=Derivation(scope=ALL_SIZES, steps=[
        Cases(sp.Max(_t, 0), sp.Piecewise((_t, _t > 0), (0, True)), over=[_t],
              why="on {y > 0} ReLU(y) = y and on {y <= 0} ReLU(y) = 0: with the pattern fixed every layer is affine "
                  "in I, the region is an intersection of half-spaces (convex), so S is affine on the segment [I, I']"),
    ]),
    conventions=RELU_CONVENTION + " The region is defined by [y > 0], which matches ReLU'(0) = 0; with "
                "ReLU'(0) = 1/2 the gradient at a kink is not the region's slope (mutant relu_prime_half).",
    uses=["koo.backprop.block-layer"],
    mutants=[
        Mutant("relu_prime_half", "the same with ReLU'(0) = 1/2 (SymPy's Heaviside(0), jnp.maximum's autodiff)",
               make_local_linear(relu0=0.5)),
        Mutant("no_offset", "S(I') = grad S(I) . I' (the offset b dropped)",
               lambda s, x: residual(_score(s, x, x["I"] + x["t"] * x["d"])[0],
                                     xp.sum(saliency(s, x, x["I"]) * (x["I"] + x["t"] * x["d"])),
                                     _score(s, x, xp.abs(x["I"]) + xp.abs(x["t"] * x["d"]), absolute=True)[0])),
        Mutant("double_step", "S(I') = S(I) + 2 grad S(I) . (I' - I)",
               lambda s, x: residual(_score(s, x, x["I"] + x["t"] * x["d"])[0],
                                     _score(s, x, x["I"])[0] + 2.0 * xp.sum(saliency(s, x, x["I"]) * x["t"] * x["d"]),
                                     _score(s, x, xp.abs(x["I"]), absolute=True)[0]
                                     + _score(s, x, xp.abs(x["t"] * x["d"]), absolute=True)[0])),
    ],
)
