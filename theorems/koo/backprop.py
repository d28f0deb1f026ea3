"""Back-propagation lemmas from H. I. Koo's lecture "Neural Network - Back-propagation" (formalisations B1-B4).

B1 block backward of a layer Y = W X + b, V = phi(Y) (the lecture's "block-based representation"):
   dL/dX = W^T dL/dY, dL/dY = phi'(Y) o dL/dV, dL/dW = dL/dY X^T, dL/db = dL/dY summed over the batch.
B2 quadratic forms (the lecture's "Basic Math" slide): d(x^T A x)/dx = x^T (A + A^T), d(x^T A x)/dA = x x^T.
B3 max routes the gradient to the maximiser (with explicit tie conventions).
B4 saliency (Simonyan et al., as presented in the lecture): S(I) ~ w I + b with w = dS/dI; for a bias-free
   ReLU network the model is exact with b = 0 (Euler's identity for positively homogeneous maps).

What the derivations prove (the engine computes each scope; see each theorem's conventions):

* B1: one sigmoid layer (``koo.backprop.block-layer.one-layer``): SymPy's partial derivatives of
  L = <G, sigma(W X + b 1^T)> are the block formulas, at every n_in, n_out, batch in {1, 2}. The deep
  statement (``koo.backprop.block-layer``: layer by layer, against forward mode and jax.grad) is tested.
* B2: entry by entry at n = 1..4 (explicit sizes: SymPy's derivative of a Sum over a symbolic range by an
  entry x[k] leaves a Piecewise on 0 <= k < n that no rule discharges).
* B3: the one-sided derivatives of max(x, y) for all x, y (ties included), and of max over a window of
  P entries, for P in {2, 3} and every number of windows K (the window index j < K symbolic): the right
  derivative along e_p is 1[w_p = max w] (every tied maximiser), the left one 1[w_p is the unique maximum].
  Stated, as the property tests them, as exact increments at a step below the gap (a case split over every
  weak ordering of the entries, ties included). Not derived: that an increment at such a step is the
  one-sided derivative (max is piecewise linear: prose), and that moving entry (j, p) changes the pooled
  objective sum_j g_j max(w_j) only through window j (the windows do not overlap): the claim is written
  for window j's term, and the cross-check compares it with the pooled increment the property computes.
* B4: at depths 1-3 and every width (symbolic n_0, ..., n_L): S(I) = grad S(I) . I for a bias-free ReLU
  network (the gradient written as the forward-mode product u^T D_L W_L ... D_1 W_1 I); the same chain
  does not prove the with-bias claim (it is refuted). For the local linear model with biases: the exact
  identity S(I') = S(I) + u^T delta_L with delta_l = D_l W_l delta_{l-1} + (D'_l - D_l) y'_l (for all I,
  I'), which is grad S(I) . (I' - I) when I and I' share the activation pattern (D' = D). That last step
  (each correction term carries a factor [y'_l > 0] - [y_l > 0], 0 on the region) is not a chain link: the
  engine has no way to state the region inside a claim; the cross-check compares the claim with the
  property on instances of the region.
* Scopes are what the engine computes: explicit sizes where the chain is written at explicit sizes (B1, B2,
  the window size P of B3, the depth of B4), all sizes where the sizes stay symbolic (x, y of B3; K of B3;
  the widths of B4). Trivial regimes are declared (x = 0 for B2, n = 1 for the symmetric case, a dead top
  layer or an all-open network for B4): a confirmation needs instances outside them.
* Claims about jax.grad, jnp.max and lax.reduce_window themselves are float64-only numeric components
  (tested, never derived).

Conventions found by running JAX 0.x (float64) and SymPy 1.14, stated because they differ:

* ``jax.grad(jnp.maximum)`` at a tie x == y gives 1/2 to each argument; ``jnp.max`` over k tied entries
  gives 1/k to each; ``lax.reduce_window`` max-pooling gives the whole gradient to the FIRST maximiser.
* ReLU'(0): ``jax.nn.relu``, ``jnp.where(y > 0, y, 0)`` and ``xp.relu`` give 0; ``jnp.maximum(y, 0)``
  gives 1/2 (``xp.relu`` was once written that way; this family's search found it). SymPy: d Max(0, y)/dy =
  Heaviside(y) with Heaviside(0) = 1/2, and d Max(a, b, c)/da = Heaviside(a - Max(b, c)), which is 1/2 at a
  three-way tie (the three partials then sum to 3/2, not 1). The derivations write the gate [y > 0] as
  ``Heaviside(y, 0)`` (0 at 0, as ``xp.heaviside``).
* SymPy's MatrixSymbol calculus is silently wrong on element access and on sums of traces:
  ``diff((x.T*A*x)[0, 0], x)``, ``diff(Trace(A) + Trace(A**2), A)`` and ``diff(Trace(G.T*W*X) +
  Trace(G.T*W*X), X)`` all return 0. No derivation here relies on it; the mutants ``sympy_matrixsymbol_*``
  state what SymPy returns and are refuted.
"""

from __future__ import annotations

import itertools

import numpy as np
import sympy as sp
from hypothesis import strategies as st

from theorems.sources import KOO
from verify import (
    Algebra,
    Assumption,
    Cases,
    Claim,
    Derivation,
    Fact,
    Lemma,
    Mutant,
    Regime,
    Theorem,
    Tolerance,
    eq,
    residual,
    xp,
)
from verify.values import Structure

SOURCE = KOO

RELU_CONVENTION = (
    "ReLU'(0) = 0 in every hand-written backward and in the autodiff forward (jnp.where(y > 0, y, 0), like "
    "jax.nn.relu). Beware: jax.grad of jnp.maximum(y, 0) is 1/2 at y = 0, and SymPy's Heaviside(0) = 1/2."
)

# Rounding: both sides of every comparison are sums of products of the same terms taken in different orders;
# `scale` is computed by running the same computation on absolute values (|W|, |X|, the terms of phi' (dphi_size),
# |dL/dV|, ...), so
# the float64 error is <= (number of terms along a path, <= ~50 here) * eps * scale ~ 1e-14 * scale.
TOLERANCE = Tolerance(
    atol=0.0, rtol=1e-11,
    reason="sums of <= ~50 products in different orders, scale = the same computation on absolute values: "
           "error <= 50 eps * scale ~ 1e-14 * scale; rtol 1e-11 leaves ~1000x",
)


def _step(y):
    """[y > 0] as a float (ReLU'(y) with ReLU'(0) = 0)."""
    return xp.where(y > 0, 1.0, 0.0)


def _sigmoid(y):
    return 1.0 / (1.0 + xp.exp(-y))


ACTS = ("relu", "tanh", "sigmoid", "identity")


def phi(act, y):
    if act == "relu":
        return xp.where(y > 0, y, 0.0)
    if act == "tanh":
        return xp.tanh(y)
    if act == "sigmoid":
        return _sigmoid(y)
    return y


def dphi(act, y, v):
    """phi'(Y) given Y and V = phi(Y)."""
    if act == "relu":
        return _step(y)
    if act == "tanh":
        return 1.0 - v * v
    if act == "sigmoid":
        return v * (1.0 - v)
    return xp.ones(y.shape)


def dphi_size(act, y, v):
    """The size of the terms of phi'(Y) as :func:`dphi` computes it (the same computation on absolute
    values), for a tolerance scale: 1 + V^2 for tanh, |V| (1 + |V|) for the sigmoid. Not |phi'|: where
    tanh saturates (|Y| from 6 to 14) 1 - V^2 is 2e-5 to 3e-12 while the float64 rounding of 1 - V*V is
    ~1e-16, so that scale failed the true block-layer claim by up to 206x once 1 - V*V was computed
    without a fused multiply-add (programs compiled with LLVM's optimisation off showed it)."""
    if act == "tanh":
        return 1.0 + v * v
    if act == "sigmoid":
        return xp.abs(v) * (1.0 + xp.abs(v))
    return xp.abs(dphi(act, y, v))


def _on(cond):
    """The indicator [cond] as SymPy writes it."""
    return sp.Piecewise((1, cond), (0, True))


def _gate(y):
    """[y > 0], 0 at y = 0 (ReLU'(0) = 0; SymPy's one-argument Heaviside(0) would be 1/2)."""
    return sp.Heaviside(y, 0)


def _substitute(prev, fact, at):
    """``prev`` with the instance ``at`` of ``fact`` (an == fact) substituted, left side by right side:
    the expression the engine's Lemma check computes from the same fact and instance."""
    at = {sp.sympify(k): sp.sympify(v) for k, v in at.items()}
    return prev.xreplace({fact.claim.lhs.xreplace(at): fact.claim.rhs.xreplace(at)})


def _by(prev, fact, why, at):
    """The link ``prev == prev[fact instance]``, justified by the fact."""
    return eq(_substitute(prev, fact, at), Lemma(fact.name, why, at=at))


# ============================================================================ B1 block backward

NET = st.fixed_dictionaries({
    "widths": st.lists(st.integers(1, 4), min_size=2, max_size=4).map(tuple),  # depth 1-3
    "B": st.integers(1, 3),
    "act": st.sampled_from(ACTS),
})


#: the small scope every search covers first: each activation at depths 1-3, widths 1-2, batch 1-2 (28
#: structures; the strategy's own small scope has 54, more than a COVER budget gives one batch each). First the
#: structure that exercises every formula (a budget of one coverage batch takes the first): a 2 x 2 tanh layer
#: (W^T differs from a reshape, phi' from 1) on a batch of 2 (a sum differs from a mean)
NET_SCOPE = [{"widths": w, "B": b, "act": a} for w, b in
             (((2, 2), 2), ((1, 1), 1), ((2, 1), 1), ((1, 2), 2), ((2, 2, 2), 1), ((1, 2, 1, 2), 2), ((2, 2, 2, 2), 1))
             for a in ("tanh", "relu", "sigmoid", "identity")]


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
    runs it on |W|, |X|, the terms of phi' (:func:`dphi_size`), |dL/dV| (the size of the terms summed, for the
    tolerance scale)."""
    ab = xp.abs if absolute else (lambda a: a)
    Xs, Ys, Vs = _forward(s, x, x["X"])
    G = ab(x["C"]) + ab(x["Q"]) * ab(Vs[-1])  # dL/dV of the top layer
    grads = {}
    for l in reversed(range(len(s.widths) - 1)):
        W, Xl = ab(x[f"W{l}"]), ab(Xs[l])
        dY = (dphi_size if absolute else dphi)(s.act, Ys[l], Vs[l]) * G if use_dphi else G
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
        t = (dphi_size if absolute else dphi)(s.act, Ys[l], Vs[l]) * dY
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


_BLOCK_MUTANTS = (
    ("w_not_transposed", "dL/dX = W dL/dY (W read as n_in x n_out without transposing)", {"wt": False}),
    ("missing_dphi", "dL/dY = dL/dV (the phi'(Y) factor dropped)", {"use_dphi": False}),
    ("wrong_outer_product", "dL/dW = X (dL/dY)^T read as n_out x n_in (outer product in the wrong order)",
     {"xt": False}),
    ("db_averaged", "dL/db = dL/dY averaged (not summed) over the batch", {"sum_b": False}),
)

# --- one layer: a sigmoid layer, its upstream gradient G = dL/dV drawn (by the chain rule L enters a layer's
# backward only through dL/dV, so L = <G, V> is the general case for one layer)

ONE_LAYER = st.fixed_dictionaries({"n_in": st.integers(1, 3), "n_out": st.integers(1, 3), "B": st.integers(1, 3)})
#: every structure of the strategy (27), the one that exercises every formula first (see NET_SCOPE)
ONE_LAYER_SCOPE = [{"n_in": 2, "n_out": 2, "B": 2}] + [
    {"n_in": a, "n_out": b, "B": c} for a, b, c in itertools.product((1, 2, 3), repeat=3) if (a, b, c) != (2, 2, 2)]


def one_layer_instance(rng, s):
    return {"X": rng.reals((s.n_in, s.B)), "W": rng.reals((s.n_out, s.n_in)), "b": rng.reals((s.n_out,)),
            "G": rng.reals((s.n_out, s.B))}


def _as_network(s, x):
    """The layer as a depth-1 sigmoid network of the block-layer theorem, with L = <G, V> (C = G, Q = 0)."""
    net = Structure({"widths": (s.n_in, s.n_out), "B": s.B, "act": "sigmoid"})
    return net, {"X": x["X"], "W0": x["W"], "b0": x["b"], "C": x["G"], "Q": xp.zeros(x["G"].shape)}


def make_one_layer_claim(**flags):
    """Components dX, dW, db: the gradient by forward mode (the derivative) against the block formula."""

    def prop(s, x):
        net, p = _as_network(s, x)
        fwd, hand = forward_mode_gradient(net, p), block_backward(net, p, **flags)
        fa, ba = forward_mode_gradient(net, p, absolute=True), block_backward(net, p, absolute=True)
        return {f"d{k}": residual(fwd[n], hand[n], fa[n] + ba[n]) for k, n in (("X", "X"), ("W", "W0"), ("b", "b0"))}

    return prop


_X, _W, _b, _G = (sp.IndexedBase(n, real=True) for n in ("X", "W", "b", "G"))


def _sig(y):
    return 1 / (1 + sp.exp(-y))


def _one_layer(component, n_in, n_out, B):
    """At explicit sizes: the partial derivatives of L = sum_iq G_iq sigma(Y_iq), Y = W X + b 1^T, entry by
    entry, against the block formula with dL/dY = sigma'(Y) o G = sigma(Y) (1 - sigma(Y)) o G."""
    Y = [[sum(_W[i, p] * _X[p, q] for p in range(n_in)) + _b[i] for q in range(B)] for i in range(n_out)]
    L = sum(_G[i, q] * _sig(Y[i][q]) for i in range(n_out) for q in range(B))
    # sigma'(y) as SymPy differentiates it, then as the lecture writes it
    raw = [[_G[i, q] * sp.exp(-Y[i][q]) / (1 + sp.exp(-Y[i][q])) ** 2 for q in range(B)] for i in range(n_out)]
    dY = [[_sig(Y[i][q]) * (1 - _sig(Y[i][q])) * _G[i, q] for q in range(B)] for i in range(n_out)]
    if component == "dX":
        shape, var = (n_in, B), lambda p, q: _X[p, q]
        formula = lambda d: (lambda p, q: sum(_W[i, p] * d[i][q] for i in range(n_out)))  # W^T dL/dY
    elif component == "dW":
        shape, var = (n_out, n_in), lambda i, p: _W[i, p]
        formula = lambda d: (lambda i, p: sum(d[i][q] * _X[p, q] for q in range(B)))  # dL/dY X^T
    else:
        shape, var = (n_out, 1), lambda i, _: _b[i]
        formula = lambda d: (lambda i, _: sum(d[i][q] for q in range(B)))  # dL/dY 1
    claim = Claim(sp.Matrix(*shape, lambda a, c: sp.Derivative(L, var(a, c))), "==", sp.Matrix(*shape, formula(dY)))
    return Derivation(claim, component=component, chain=[
        eq(sp.Matrix(*shape, formula(raw)), Algebra("SymPy's partial derivatives, entry by entry: by the chain rule "
                                                     "through sigma and the linear map W X + b 1^T")),
        eq(claim.rhs, Algebra("sigma'(y) = e^-y / (1 + e^-y)^2 = sigma(y) (1 - sigma(y))")),
    ])


ONE_LAYER_SIZES = {"n_in": [1, 2], "n_out": [1, 2], "B": [1, 2]}

block_layer_one = Theorem(
    id="koo.backprop.block-layer.one-layer",
    title="Block backward of one sigmoid layer: the partial derivatives are W^T dL/dY, dL/dY X^T, dL/dY 1",
    source=SOURCE.at("'Block-based representation', one layer", formalisation="b1"),
    statement=(
        r"For $Y = W X + b\mathbf{1}^\top$, $V = \sigma(Y)$ and $L = \langle G, V\rangle$ ($G = \partial L/\partial V$): "
        r"with $\partial L/\partial Y = \sigma'(Y) \circ G$, $\sigma' = \sigma(1 - \sigma)$: "
        r"$\partial L/\partial X = W^\top \partial L/\partial Y$, $\partial L/\partial W = (\partial L/\partial Y) X^\top$, "
        r"$\partial L/\partial b = (\partial L/\partial Y)\mathbf{1}$."
    ),
    property=make_one_layer_claim(),
    structure=ONE_LAYER,
    sample=one_layer_instance,
    tolerance=TOLERANCE,
    scope=ONE_LAYER_SCOPE,
    derivation=[Derivation.for_sizes(lambda n_in, n_out, B, c=c: _one_layer(c, n_in, n_out, B), **ONE_LAYER_SIZES)
                for c in ("dX", "dW", "db")],
    conventions="The derivation differentiates the explicit expression at every n_in, n_out, batch in {1, 2} "
                "(SymPy's calculus on Sums over symbolic ranges leaves index-range Piecewise terms, and its "
                "MatrixSymbol calculus is wrong on sums of traces); the numeric face compares forward-mode "
                "tangents with the block formula at sizes up to 3. sigma is smooth, so the derivative exists "
                "everywhere; ReLU's kink is the subject of koo.backprop.max-routing.",
    mutants=[Mutant(name, desc, make_one_layer_claim(**flags)) for name, desc, flags in _BLOCK_MUTANTS],
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
        r"networks of depth 1-3, widths 1-4, batch 1-3, phi in {ReLU, tanh, sigmoid, identity}, "
        r"$L = \sum C \circ V + \frac12 \sum Q \circ V \circ V$."
    ),
    property=make_block_claim(),
    structure=NET,
    sample=net_instance,
    tolerance=TOLERANCE,
    scope=NET_SCOPE,
    conventions=RELU_CONVENTION + " No derivation: the one-layer formulas are derived in "
                "koo.backprop.block-layer.one-layer; their composition over layers (the chain rule) and the "
                "agreement with jax.grad are tested numerically.",
    uses=["koo.backprop.block-layer.one-layer"],
    mutants=[Mutant(name, desc, make_block_claim(**flags)) for name, desc, flags in _BLOCK_MUTANTS],
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


#: x = 0: every derivative of x^T A x is 0 and so is every claimed formula (rng.reals draws exact zeros)
X_ZERO = Regime("x_zero", "x = 0: both gradients and every formula vanish", lambda s, x: xp.all(x["x"] == 0))


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


# --- symbolic, entry by entry at explicit n: the instance's x and A by name

_x, _A = sp.IndexedBase("x", real=True), sp.IndexedBase("A", real=True)


def _quad_f(n, entry=lambda i, j: _A[i, j]):
    return sum(_x[i] * entry(i, j) * _x[j] for i in range(n) for j in range(n))


def _quad_dx(n, entry=lambda i, j: _A[i, j], rhs=None):
    """d(x^T A x)/dx_k for k < n against x^T (A + A^T) (the lecture's row vector; as a column here)."""
    f = _quad_f(n, entry)
    rhs = rhs or (lambda k: sum((entry(k, j) + entry(j, k)) * _x[j] for j in range(n)))
    claim = Claim(sp.Matrix(n, 1, lambda k, _: sp.Derivative(f, _x[k])), "==", sp.Matrix(n, 1, lambda k, _: rhs(k)))
    return Derivation(claim, component="increment_x", chain=[
        eq(claim.rhs, Algebra("SymPy's partial derivatives of the explicit sum sum_ij x_i A_ij x_j"))])


def _quad_dA(n):
    f = _quad_f(n)
    claim = Claim(sp.Matrix(n, n, lambda i, j: sp.Derivative(f, _A[i, j])), "==", sp.Matrix(n, n, lambda i, j: _x[i] * _x[j]))
    return Derivation(claim, component="increment_A", chain=[
        eq(claim.rhs, Algebra("x^T A x is linear in A_ij with coefficient x_i x_j"))])


QUAD_DERIVED = [1, 2, 3, 4]

# what SymPy 1.14's MatrixSymbol calculus returns for the element (x.T*A*x)[0, 0] (silently 0), at n = 3
_XS, _AS = sp.MatrixSymbol("x", 3, 1), sp.MatrixSymbol("A", 3, 3)
SYMPY_ELEMENT_DX = sp.Matrix(sp.diff((_XS.T * _AS * _XS)[0, 0], _XS))
SYMPY_ELEMENT_DA = sp.Matrix(sp.diff((_XS.T * _AS * _XS)[0, 0], _AS))


def _stated(component, n, rhs):
    """A mutant's claim (no chain): d(x^T A x) = rhs, entry by entry at n; the engine looks for a rational
    point where it fails."""
    f = _quad_f(n)
    if component == "increment_x":
        lhs = sp.Matrix(n, 1, lambda k, _: sp.Derivative(f, _x[k]))
    else:
        lhs = sp.Matrix(n, n, lambda i, j: sp.Derivative(f, _A[i, j]))
    return Derivation(Claim(lhs, "==", rhs), component=component, size={"n": n})


_quad_mutants = [
    Mutant("two_a_x", "d(x^T A x)/dx = 2 A x (assumes A symmetric)", make_quad_claim(gx=lambda x, A: 2.0 * (A @ x))),
    Mutant("a_x_only", "d(x^T A x)/dx = A x", make_quad_claim(gx=lambda x, A: A @ x)),
    Mutant("x_transpose_x", "d(x^T A x)/dA = x^T x (the inner product, in every entry)",
           make_quad_claim(gA=lambda x, A: xp.sum(x * x) * xp.ones(A.shape))),
    Mutant("sympy_matrixsymbol_dx",
           "d(x^T A x)/dx as SymPy computes it from the matrix element: diff((x.T*A*x)[0, 0], x) = 0",
           make_quad_claim(gx=lambda x, A: 0.0 * x), derivation=_stated("increment_x", 3, SYMPY_ELEMENT_DX)),
    Mutant("sympy_matrixsymbol_da",
           "d(x^T A x)/dA as SymPy computes it from the matrix element: diff((x.T*A*x)[0, 0], A) = 0",
           make_quad_claim(gA=lambda x, A: 0.0 * A), derivation=_stated("increment_A", 3, SYMPY_ELEMENT_DA)),
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
    derivation=[Derivation.for_sizes(_quad_dx, n=QUAD_DERIVED), Derivation.for_sizes(_quad_dA, n=QUAD_DERIVED)],
    trivial=[X_ZERO],
    conventions="Gradients in numerator layout as in the lecture (row vector for d/dx, compared as a column); "
                "entrywise. Symbolic scope: explicit symbols at n = 1..4 (the numeric face draws n <= 4); the "
                "claim's derivative is compared on instances with the exact increments f(x + e_i) - f(x) - A_ii "
                "and f(x, A + E_ij) - f(x, A). SymPy's MatrixSymbol derivative of an element access "
                "(x.T*A*x)[0,0] is silently 0: the mutants sympy_matrixsymbol_* state it and are refuted.",
    mutants=_quad_mutants,
)


def _symmetric(s, x):
    return xp.all(x["A"] == xp.transpose(x["A"]))


def _upper(i, j):
    """A symmetric A written by its upper triangle: A_ij = A_ji is built into the claim."""
    return _A[min(i, j), max(i, j)]


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
    trivial=[X_ZERO, Regime("scalar", "n = 1: every 1x1 A is symmetric, so the claim is the general formula and "
                                      "symmetry is not used", lambda s, x: s.n == 1)],
    derivation=[
        Derivation.for_sizes(lambda n: _quad_dx(n, _upper, lambda k: 2 * sum(_upper(k, j) * _x[j] for j in range(n))),
                             n=QUAD_DERIVED),
        Derivation.for_sizes(_quad_dA, n=QUAD_DERIVED),
    ],
    conventions="Symbolic scope: n = 1..4, with A written by its upper triangle (A_ij = A_ji is part of the "
                "claim, so the claim is compared only with symmetric instances). d/dA perturbs single entries "
                "(A + E_ij is not symmetric), so that component is the general x x^T.",
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


def _max_step(x, y):
    """A step below the gap: |x - y| / 4, or 1 at a tie (any step works there)."""
    return xp.where(x != y, xp.abs(x - y) / 4.0, 1.0)


def _window_steps(V):
    """Per window: a quarter of the gap between its maximum and the nearest entry below it (1 if all tie)."""
    m = xp.max(V, axis=1)
    below = m[:, None] - V
    gap = xp.min(xp.where(below > 0, below, xp.inf), axis=1)
    return xp.where(gap < xp.inf, gap / 4.0, 1.0)


def _is_max(V):
    return xp.where(V == xp.max(V, axis=1)[:, None], 1.0, 0.0)


def _unique_max(V):
    """[V_jp > every other entry of window j]: the left derivative's routing."""
    P = V.shape[1]
    others = xp.max(xp.where(np.eye(P, dtype=bool)[None, :, :], -xp.inf, V[:, None, :]), axis=2)
    return xp.where(V > others, 1.0, 0.0)


def make_max_claim(left=None, jax_tie=0.5, relu_tie=0.5, route=None):
    """left(x, y): claimed left derivative; jax_tie: jax.grad(jnp.maximum)(x, x) claimed; relu_tie:
    jax.grad(lambda t: jnp.maximum(t, 0))(0) claimed; route(V, g): claimed max-pool routing (K x P) for both
    one-sided derivatives (default: g_j [v = max] to the right, g_j [v is the unique max] to the left)."""
    left = left or (lambda x, y: xp.where(x > y, 1.0, 0.0))
    right_route = route or (lambda V, g: g[:, None] * _is_max(V))
    left_route = route or (lambda V, g: g[:, None] * _unique_max(V))

    def prop(s, x_):
        K, P = s.K, s.P
        x, y, r, v, g = (x_[k] for k in ("x", "y", "r", "v", "g"))
        size = xp.abs(x) + xp.abs(y)
        h = _max_step(x, y)
        out = {
            # one-sided derivatives, exactly: right = 1[x >= y], left = 1[x > y] (h below the gap)
            "right_derivative": residual(xp.maximum(x + h, y) - xp.maximum(x, y), h * xp.where(x >= y, 1.0, 0.0),
                                         size + h),
            "left_derivative": residual(xp.maximum(x, y) - xp.maximum(x - h, y), h * left(x, y), size + h),
        }
        V = xp.reshape(v, (K, P))
        hw = _window_steps(V)
        # the pooled objective sum_j g_j max(V_j) moved along h_j e_(j,p) for every window j and position p
        E = xp.reshape(xp.eye(K * P), (K, P, K, P)) * hw[:, None, None, None]
        pooled = _pool_value(v, g, K, P)
        up = xp.sum(g * xp.max(V[None, None] + E, axis=3), axis=2) - pooled
        down = pooled - xp.sum(g * xp.max(V[None, None] - E, axis=3), axis=2)
        scale = xp.sum(xp.abs(g) * (xp.abs(xp.max(V, axis=1)) + xp.max(hw))) * 2.0
        out["pool_right_derivative"] = residual(up, hw[:, None] * right_route(V, g), scale)
        out["pool_left_derivative"] = residual(down, hw[:, None] * left_route(V, g), scale)
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
        # with no tie the one-sided derivatives agree: JAX's pooling gradients must be that routing
        R = right_route(V, g)
        aG = xp.abs(g)[:, None] * xp.ones((K, P))
        out["pool_jnp_max"] = xp.float64_only(
            lambda: residual(xp.reshape(xp.jax.grad(_pool_value)(v, g, K, P), (K, P)), R, aG))
        out["pool_reduce_window"] = xp.float64_only(
            lambda: residual(xp.reshape(xp.jax.grad(_reduce_window_pool)(v, g, P), (K, P)), R, aG))
        return out

    return prop


# --- symbolic: two arguments for all x, y; a window of P entries for P in {2, 3} and every K

_x2, _y2 = sp.symbols("x y", real=True)


def _sym_step(x, y):
    return sp.Piecewise((sp.Abs(x - y) / 4, sp.Ne(x, y)), (1, True))


def _two_argument(side):
    h = _sym_step(_x2, _y2)
    if side == "right":
        claim = Claim(sp.Max(_x2 + h, _y2) - sp.Max(_x2, _y2), "==", h * _on(_x2 >= _y2))
    else:
        claim = Claim(sp.Max(_x2, _y2) - sp.Max(_x2 - h, _y2), "==", h * _on(_x2 > _y2))
    return Derivation(claim, component=f"{side}_derivative", chain=[
        eq(claim.rhs, Cases([_x2, _y2], "every weak ordering of x, y and 0, ties included: away from a tie the "
                                        "step h = |x - y|/4 does not reach the other argument"))])


def _sym_window_step(ws):
    m = sp.Max(*ws)
    gap = sp.Min(*[sp.Piecewise((m - w, w < m), (sp.oo, True)) for w in ws])
    return sp.Piecewise((gap / 4, gap < sp.oo), (1, True))


def _window(side, ws, p, g):
    """g (max(w + h e_p) - max(w)) and its claimed value g h [w_p = max w] (right), or the left-sided pair
    g (max(w) - max(w - h e_p)) and g h [w_p > every other entry]."""
    h = _sym_window_step(ws)
    moved = [w + (h if side == "right" else -h) if q == p else w for q, w in enumerate(ws)]
    if side == "right":
        return g * (sp.Max(*moved) - sp.Max(*ws)), g * h * _on(sp.Eq(ws[p], sp.Max(*ws)))
    others = [w for q, w in enumerate(ws) if q != p]
    return g * (sp.Max(*ws) - sp.Max(*moved)), g * h * _on(ws[p] > sp.Max(*others))


_v, _g = sp.IndexedBase("v", real=True), sp.IndexedBase("g", real=True)
_j = sp.Symbol("j", integer=True)
_K = sp.Symbol("K", integer=True, positive=True)
_gs = sp.Symbol("g", real=True)


def _pool(side, P):
    """Window j of the pooled objective sum_j g_j max(v_Pj, ..., v_Pj+P-1), for every j < K (entries): the
    P one-sided derivatives along its positions. One fact for position 0 (all weak orderings of the P
    entries), used at every position by symmetry of max (the instance permutes the entries)."""
    ws = list(sp.symbols(f"w0:{P}", real=True))
    fl, fr = _window(side, ws, 0, _gs)
    fact = Fact(f"window_{side}", Claim(fl, "==", fr),
                [eq(fr, Cases(ws, f"every weak ordering of the {P} entries and 0, ties included"))])
    win = [_v[P * _j + q] for q in range(P)]
    lhs = sp.Matrix([_window(side, win, p, _g[_j])[0] for p in range(P)])
    chain, cur = [], lhs
    for p in range(P):
        order = [p] + [q for q in range(P) if q != p]
        link = _by(cur, fact, f"position {p} of window j", {ws[a]: win[b] for a, b in enumerate(order)} | {_gs: _g[_j]})
        chain.append(link)
        cur = link.expr
    rhs = sp.Matrix([_window(side, win, p, _g[_j])[1] for p in range(P)])
    return Derivation(Claim(lhs, "==", rhs), chain, facts=[fact], component=f"pool_{side}_derivative",
                      entries=(_j, 0, _K - 1))


POOL_DERIVED = [2, 3]

max_routing = Theorem(
    id="koo.backprop.max-routing",
    title="max routes the gradient to the maximiser; max-pooling passes it to the arg-max position only",
    source=SOURCE.at("the routing rule of max units", formalisation="b3"),
    statement=(
        r"$\partial^+ \max(x, y)/\partial x = \mathbf{1}[x \ge y]$ (right derivative), $\partial^- = \mathbf{1}[x > y]$; "
        r"at a tie jax.grad(jnp.maximum) returns 1/2 to each argument (the mean of the one-sided derivatives). "
        r"ReLU'(0): jax.nn.relu gives 0, jax.grad of jnp.maximum(y, 0) gives 1/2, SymPy's Heaviside(0) is 1/2. "
        r"For max-pooling $\sum_j g_j \max_{i \in w_j} v_i$ over non-overlapping windows: the right derivative in "
        r"$v_i$ is $g_j \mathbf{1}[v_i = \max w_j]$, the left one $g_j \mathbf{1}[v_i$ is the unique maximum of $w_j]$; "
        r"with no tied maximum both are $g_j$ at the arg-max of window $j$ and 0 elsewhere "
        r"(\texttt{jnp.max} and \texttt{lax.reduce\_window} agree)."
    ),
    property=make_max_claim(),
    structure=POOL,
    sample=max_instance,
    tolerance=TOLERANCE,
    assumptions=[Assumption("no_ties", "every pooling window has a unique maximum", _no_ties)],
    derivation=[_two_argument("right"), _two_argument("left"),
                Derivation.for_sizes(lambda P: _pool("right", P), P=POOL_DERIVED),
                Derivation.for_sizes(lambda P: _pool("left", P), P=POOL_DERIVED)],
    conventions=(
        "Ties (measured, JAX float64): jax.grad(jnp.maximum)(x, x) = (1/2, 1/2); jnp.max over k tied entries gives "
        "1/k to each; lax.reduce_window max-pooling gives all of it to the first maximiser. ReLU'(0) = 0 for "
        "jax.nn.relu and jnp.where(y > 0, y, 0), 1/2 for jnp.maximum(y, 0); SymPy: Heaviside(0) = 1/2 and "
        "d Max(a,b,c)/da = 1/2 at a triple tie. The one-sided derivatives are stated as exact increments with a "
        "step below the gap (|x - y|/4; per window a quarter of the gap between its maximum and the nearest "
        "entry below it; 1 at a full tie) and derived for all x, y and for windows of P = 2, 3 entries (every "
        "K), ties included. The pooled claim is written window by window (entries j < K): that moving entry "
        "(j, p) leaves the other windows' terms unchanged (non-overlapping windows) is compared with the "
        "property on instances, not derived. The JAX components are tested only; they need no_ties (with "
        "ties the derivative does not exist and jnp.max and reduce_window disagree: ablation of no_ties)."
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

SALIENCY_NETS = st.integers(1, 3).flatmap(lambda depth: st.fixed_dictionaries({
    "depth": st.just(depth),
    "widths": st.lists(st.integers(1, 3), min_size=depth + 1, max_size=depth + 1).map(tuple),  # input, hidden
}))


#: the small scope every search covers first (a flatmap strategy has no derived one): 13 structures, every depth,
#: widths 1-2 (an input of 3 at depth 1), width-1 chains and wider layers, so one COVER budget gives each a batch
SALIENCY_SCOPE = [{"depth": len(w) - 1, "widths": w} for w in (
    (1, 1), (2, 1), (1, 2), (3, 2),
    (1, 1, 1), (2, 2, 1), (1, 2, 2), (2, 2, 2),
    (1, 1, 1, 1), (2, 1, 2, 2), (2, 2, 2, 1), (1, 2, 2, 2), (2, 2, 2, 2))]


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
    # alive some of the time: unit 0 of every layer gets W_l[0] . h_{l-1} >= 0 (its row's sign flipped if needed;
    # not layer 0 on a kink), so the top is not dead and the other units give mixed activation patterns; random
    # weights alone leave the last layer dead at I in about 3/4 of the draws
    alive = rng.coin(0.5)
    h = x["I"]
    for l in range(len(w) - 1):
        W = x[f"W{l}"]
        flip = xp.where(alive & (W[0] @ h < 0) & ~(kink & (l == 0)), -1.0, 1.0)
        x[f"W{l}"] = W.at[0].set(flip * W[0])
        h = phi("relu", x[f"W{l}"] @ h + x[f"b{l}"])
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
    """grad S(I) . I (by the hand-written backward, and by jax.grad) against S(I)."""

    def prop(s, x):
        I = x["I"]
        S, _ = _score(s, x, I, act)
        scale = _score(s, x, I, act, absolute=True)[0]
        w = saliency(s, x, I, act)
        dot = (lambda g: factor * xp.sum(g * I)) if times_input else (lambda g: xp.sum(g))
        if not times_input:
            scale = scale + xp.sum(xp.abs(w))
        out = {"hand": residual(dot(w), S, scale)}
        out["autodiff"] = xp.float64_only(  # about jax.grad itself
            lambda: residual(dot(xp.jax.grad(lambda i: _score(s, x, i, act)[0])(I)), S, scale))
        return out

    return prop


def _dead_top(s, x):
    return xp.all(_score(s, x, x["I"])[1][-1] <= 0)


def _all_open(s, x):
    return xp.all(xp.stack([xp.all(y > 0) for y in _score(s, x, x["I"])[1]]))


#: where the saliency claims hold for a trivial reason (ReLU networks with random weights of width 1-2 are often
#: dead at the top: a depth-3 chain of width 1 is alive only when all three units are on)
SALIENCY_TRIVIAL = [
    Regime("dead_top", "every unit of the last hidden layer is off at I: S is the constant c near I and its "
                       "gradient is 0", _dead_top),
    Regime("all_open", "every unit of every layer is on at I: the network is the affine map u^T W_L ... W_1 I + "
                       "const, whose linearisation is exact", _all_open),
]


def _bias_free(s, x):
    z = [xp.all(x[f"b{l}"] == 0) for l in range(len(s.widths) - 1)]
    return xp.all(xp.stack(z + [x["c"] == 0]))


# --- symbolic, at depths 1-3 and every width: the instance's I, u, c, d, t, W_l, b_l by name, the widths
# n_0..n_L bound to the structure

_I, _u, _dI = (sp.IndexedBase(n, real=True) for n in ("I", "u", "d"))
_c = sp.Symbol("c", real=True)
_tstep = sp.Symbol("t", positive=True)
_wgt, _yv, _ypv = sp.symbols("w y yp", real=True)
DEPTHS = [1, 2, 3]


class _Net:
    """A ReLU network of the given depth over symbolic widths: pre-activations y_l, outputs h_l as
    functions of the unit's index, and the score S. ``bias=False``: no b_l and no c."""

    def __init__(self, depth, bias):
        self.depth, self.bias = depth, bias
        self.n = [sp.Symbol(f"n{l}", integer=True, positive=True) for l in range(depth + 1)]
        self.W = [sp.IndexedBase(f"W{l}", real=True) for l in range(depth)]
        self.b = [sp.IndexedBase(f"b{l}", real=True) for l in range(depth)]
        self.i = [sp.Symbol(f"i{l}", integer=True) for l in range(depth + 1)]  # i_l: a unit of layer l

    @property
    def bind(self):
        return {f"n{l}": (lambda s, l=l: s.widths[l]) for l in range(self.depth + 1)}

    def lin(self, l, unit, prev):
        """(W_l prev)[unit] = sum_k W_l[unit, k] prev(k)."""
        k = self.i[l]
        return sp.Sum(self.W[l][unit, k] * prev(k), (k, 0, self.n[l] - 1))

    def pre(self, l, unit, prev):
        return self.lin(l, unit, prev) + (self.b[l][unit] if self.bias else 0)

    def outputs(self, inp):
        """[h_-1 = inp, h_0, ..., h_{L-1}], each a function of a unit index."""
        hs = [inp]
        for l in range(self.depth):
            hs.append(lambda unit, l=l, prev=hs[-1]: sp.Max(self.pre(l, unit, prev), 0))
        return hs

    def readout(self, f):
        top = self.i[self.depth]
        return sp.Sum(_u[top] * f(top), (top, 0, self.n[self.depth] - 1))

    def score(self, inp):
        return self.readout(self.outputs(inp)[-1]) + (_c if self.bias else 0)

    def weight(self, l):
        """What multiplies unit i_{l+1} of layer l in the layer above: W_{l+1}[i_{l+2}, i_{l+1}], or u."""
        return _u[self.i[self.depth]] if l == self.depth - 1 else self.W[l + 1][self.i[l + 2], self.i[l + 1]]

    def tangent(self, inp, direction):
        """Forward mode along ``direction`` at ``inp``: t_l = D_l W_l t_{l-1}, D_l = [y_l > 0]; returns u . t_L,
        the directional derivative grad S(inp) . direction (ReLU'(0) = 0)."""
        hs, ts = self.outputs(inp), [direction]
        for l in range(self.depth):
            ts.append(lambda unit, l=l, prev=ts[-1]: _gate(self.pre(l, unit, hs[l])) * self.lin(l, unit, prev))
        return self.readout(ts[-1])


_GATED = Fact("gated_pre_activation", Claim(_wgt * _gate(_yv) * _yv, "==", _wgt * sp.Max(_yv, 0)),
              [eq(_wgt * sp.Max(_yv, 0), Cases([_yv], "y > 0: [y > 0] y = y; y <= 0: both sides are 0"))],
              why="a gated pre-activation is the ReLU (whatever ReLU'(0) is, since y = 0 there)")


def _homogeneous(depth, bias=False):
    """grad S(I) . I == S(I): the tangent along I, from the input up, is the forward pass. At layer l the
    tangent entering is h_{l-1}, so the gated tangent is [y_l > 0] (W_l h_{l-1}); it is the gated
    pre-activation [y_l > 0] y_l, hence ReLU(y_l) = h_l, only because y_l = W_l h_{l-1} (no bias)."""
    net = _Net(depth, bias)
    claim = Claim(net.tangent(lambda k: _I[k], lambda k: _I[k]), "==", net.score(lambda k: _I[k]))
    chain, cur = [], claim.lhs
    hs = net.outputs(lambda k: _I[k])
    for l in range(depth):
        link = _by(cur, _GATED, f"layer {l}: the tangent entering is h_{l - 1}; bias-free, W_{l} h_{l - 1} is "
                                f"the pre-activation y_{l}, so the gated tangent is ReLU(y_{l}) = h_{l}",
                   {_wgt: net.weight(l), _yv: net.pre(l, net.i[l + 1], hs[l])})
        chain.append(link)
        cur = link.expr
    return Derivation(claim, chain, facts=[_GATED], bind=net.bind, component="hand")


saliency_homogeneous = Theorem(
    id="koo.backprop.saliency-homogeneous",
    title="Saliency of a bias-free ReLU network is exact: S(I) = grad S(I) . I",
    source=SOURCE.at("saliency: S_c(I) ~ w I + b, w = dS_c/dI at I_0", formalisation="b4"),
    statement=(
        r"For $S(I) = u^\top \mathrm{ReLU}(W_L \cdots \mathrm{ReLU}(W_1 I))$ (no biases) and every $I$: "
        r"$\nabla S(I) \cdot I = S(I)$, for any value of ReLU'(0). So the lecture's linear model $S \approx w I + b$ "
        r"with $w = \partial S/\partial I|_{I}$ holds exactly at $I$ with $b = 0$."
    ),
    property=make_saliency_claim(),
    structure=SALIENCY_NETS,
    sample=sal_instance,
    tolerance=TOLERANCE,
    scope=SALIENCY_SCOPE,
    trivial=SALIENCY_TRIVIAL,
    assumptions=[Assumption("bias_free", "every layer bias and the output bias are exactly 0", _bias_free)],
    derivation=Derivation.for_sizes(_homogeneous, depth=DEPTHS),
    conventions=RELU_CONVENTION + " The identity holds for any ReLU'(0) (the unit's pre-activation is then 0). "
                "Derived at depths 1-3 for every width (n_0, ..., n_L symbolic), with grad S(I) . I written as "
                "the forward-mode product u^T D_L W_L ... D_1 W_1 I, D_l = diag [y_l > 0]; the property computes "
                "it by the hand-written backward pass (the same product evaluated right to left: that the two "
                "orders agree is associativity, compared on instances, not a chain link) and by jax.grad (tested). "
                "Layer l's link substitutes the gated pre-activation w [y > 0] y = w ReLU(y) at y = W_l h_{l-1}: "
                "the tangent [y > 0] (W_l h_{l-1}) has that form only because there is no bias (with one it is "
                "[y > 0] (y - b_l)); the same chain on the claim with biases does not reach it "
                "(koo.backprop.saliency-with-bias, refuted). Trivial regimes: a dead top layer (S = 0 = grad S . "
                "I) and an all-open network (a linear map); the sampler keeps unit 0 of every layer on in half "
                "of the draws so that most instances are neither.",
    uses=["koo.backprop.block-layer"],
    mutants=[
        Mutant("degree_two", "S(I) = 2 grad S(I) . I (homogeneity of degree 2)", make_saliency_claim(factor=2.0),
               derivation=Derivation(Claim(2 * _Net(1, False).tangent(lambda k: _I[k], lambda k: _I[k]), "==",
                                           _Net(1, False).score(lambda k: _I[k])),
                                     bind=_Net(1, False).bind, component="hand", size={"depth": 1})),
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
    statement=r"(False) For a ReLU network with nonzero biases, $\nabla S(I) \cdot I = S(I)$.",
    property=make_saliency_claim(),
    structure=SALIENCY_NETS,
    sample=_with_bias,
    tolerance=TOLERANCE,
    scope=SALIENCY_SCOPE,
    expect="false",
    # B4's chain, on the claim with the biases: its first link does not apply (the gated tangent
    # [W h + b > 0] (W h) is not a gated pre-activation) and the engine refutes the claim at a rational point.
    # Depth 1 only: a failed substitution costs SymPy minutes at depths 2-3.
    derivation=Derivation.for_sizes(lambda depth: _homogeneous(depth, bias=True), depth=[1]),
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


_N = sp.Symbol("N", integer=True, positive=True)
_kk = sp.Symbol("k", integer=True)
_wb, _pb, _qb = (sp.IndexedBase(n, real=True) for n in ("w", "p", "q"))
_c0 = sp.Symbol("c0", real=True)


def _weighted(f):
    return sp.Sum(_wb[_kk] * f, (_kk, 0, _N - 1))


_ADD_SUBTRACT = Fact("add_subtract", Claim(_weighted(_pb[_kk]) + _c0, "==",
                                           (_weighted(_qb[_kk]) + _c0) + _weighted(_pb[_kk] - _qb[_kk])),
                     [eq((_weighted(_qb[_kk]) + _c0) + _weighted(_pb[_kk] - _qb[_kk]), Algebra("a sum is linear"))])
_SUM_DIFFERENCE = Fact("sum_difference", Claim(_weighted(_pb[_kk]) - _weighted(_qb[_kk]), "==",
                                               _weighted(_pb[_kk] - _qb[_kk])),
                       [eq(_weighted(_pb[_kk] - _qb[_kk]), Algebra("a sum is linear"))])
_RELU_INCREMENT = Fact(
    "relu_increment",
    Claim(_wgt * (sp.Max(_ypv, 0) - sp.Max(_yv, 0)), "==",
          _wgt * _gate(_yv) * (_ypv - _yv) + _wgt * (_gate(_ypv) - _gate(_yv)) * _ypv),
    [eq(_wgt * _gate(_yv) * (_ypv - _yv) + _wgt * (_gate(_ypv) - _gate(_yv)) * _ypv,
        Cases([_yv, _ypv], "ReLU(y) = [y > 0] y at both points"))],
    why="ReLU(y') - ReLU(y) = [y > 0] (y' - y) + ([y' > 0] - [y > 0]) y'")


def _local_linear(depth):
    """S(I') = S(I) + u . delta_L, exactly, for every I, I' = I + t d: delta_l = h'_l - h_l is peeled from the
    top down; at each layer ReLU(y') - ReLU(y) = [y > 0] (y' - y) + ([y' > 0] - [y > 0]) y', and y' - y =
    W (h'_{l-1} - h_{l-1}) (the biases cancel). On the activation region [y' > 0] = [y > 0] the second terms
    vanish and u . delta_L is the tangent u^T D_L W_L ... D_1 W_1 (I' - I) = grad S(I) . (I' - I)."""
    net = _Net(depth, bias=True)
    x0, x1 = (lambda k: _I[k]), (lambda k: _I[k] + _tstep * _dI[k])
    h0, h1 = net.outputs(x0), net.outputs(x1)
    top = net.i[depth]
    lhs = net.score(x1)
    link = _by(lhs, _ADD_SUBTRACT, "S(I') = S(I) + u . (h'_L - h_L)",
               {_wb[_kk]: _u[top], _pb[_kk]: h1[depth](top), _qb[_kk]: h0[depth](top), _N: net.n[depth], _c0: _c,
                _kk: top})
    chain, cur = [link], link.expr
    for l in reversed(range(depth)):
        unit = net.i[l + 1]
        link = _by(cur, _RELU_INCREMENT, f"layer {l}, unit i_{l + 1}",
                   {_wgt: net.weight(l), _yv: net.pre(l, unit, h0[l]), _ypv: net.pre(l, unit, h1[l])})
        chain.append(link)
        cur = link.expr
        # y'_l - y_l = sum_k W_l[i, k] (h'_{l-1}[k] - h_{l-1}[k]): one sum (the biases cancelled)
        k = net.i[l]
        link = _by(cur, _SUM_DIFFERENCE, f"y'_{l} - y_{l} = W_{l} (h'_{l - 1} - h_{l - 1}): the biases cancel",
                   {_wb[_kk]: net.W[l][unit, k], _pb[_kk]: h1[l](k), _qb[_kk]: h0[l](k), _N: net.n[l], _kk: k})
        chain.append(link)
        cur = link.expr
    return Derivation(Claim(lhs, "==", cur), chain, facts=[_ADD_SUBTRACT, _RELU_INCREMENT, _SUM_DIFFERENCE],
                      bind=net.bind, component="hand")


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
    scope=SALIENCY_SCOPE,
    trivial=SALIENCY_TRIVIAL,
    assumptions=[Assumption("same_region", "I and I' = I + t d have the same activation pattern [y > 0] in every layer",
                            _pattern_same)],
    derivation=Derivation.for_sizes(_local_linear, depth=DEPTHS),
    conventions=RELU_CONVENTION + " The region is defined by [y > 0], which matches ReLU'(0) = 0; with "
                "ReLU'(0) = 1/2 the gradient at a kink is not the region's slope (mutant relu_prime_half). "
                "Derived at depths 1-3 for every width, for all I, I': the exact identity S(I') = S(I) + u . "
                "delta_L with delta_l = D_l W_l delta_{l-1} + (D'_l - D_l) y'_l, delta_0 = I' - I (D_l = diag "
                "[y_l > 0] at I, D'_l at I'). That it is grad S(I) . (I' - I) on the region (D' = D: the "
                "second terms vanish) is read off, not a chain link; the cross-check compares the claim with "
                "the property on instances of the region.",
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
