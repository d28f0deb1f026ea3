"""The deep DRMM: priors give biases, deep max-sum inference is a convnet, renderings are sums
over paths (Patel et al.; formalisations P4, P5, P6).

* P4 ``patel2016.prior-bias-relu``: with Gaussian pixel noise and Bernoulli switch priors,
  ``max_a log p(I, a)`` is a constant plus a sum of *biased* ReLUs, provided the rendering
  columns are orthogonal (otherwise the switches interact through ``lambda_i^T lambda_j``).
* P5 ``patel2016.deep-maxsum-convnet``: "push the max to the right": max over every latent of
  every layer of ``<mu_cg, I>`` is ``<mu_c, u_L>`` with ``u_l = MaxPool(ReLU(Gamma_l^T u_{l-1}))``,
  for each class, when the templates above the first layer are non-negative (H3). The first
  dictionary and the image may be signed.
* ``patel2016.deep-maxsum-lower-bound``: without (H3) the forward pass is still a lower bound,
  attained by the latents the bottom-up pass picks; ``patel2016.deep-maxsum-signed-class``
  (stated non-theorem) records that the class decision can then differ from joint MAP.
* P6 ``patel2016.paths-sum``: a rendering is the sum, over the active paths from the top unit
  to a pixel, of the product of the weights along the path.

The model (rendering, forward pass, brute-force joint MAP, paths) is :mod:`verify.models.drmm`.
Brute force: every joint latent configuration is enumerated, at most 2048 of them here
(``prod_l 2^(K_l P_l) P_l^(K_l)``, see ARCHS); switch priors: 2^n settings, n <= 3.

What the symbolic face proves (the engine computes each scope; every claim is cross-checked
against the property on drawn instances):

* P4, both components (the max and its maximiser): for all n and D. The orthogonality of the
  columns is the one premise not derived: the claim's log p(I, a) is written in Gram form without
  the cross terms, which is its value exactly when the columns are orthogonal.
* P5 ``value``: for each class, one chain per depth. Depth 1 for every K1, P1, D0, C. Depths 2
  and 3 at each pattern of unit counts (K_1, ..., K_L) in ARCHS, for every P_l, D0, C: the
  layer-by-layer argument (fix the latents above layer l; layer l is one convnet layer weighted by
  z_l >= 0; exchange the finite sums over units to reach layer l + 1's objective with input u_l) is
  the chain itself, not prose. The exchange of sums is checked by writing them out, so K_l is
  explicit above depth 1; an induction over an arbitrary depth L is not checked. The ``class``
  component (argmax over classes attains the joint MAP) is tested, not derived.
* ``deep-maxsum-lower-bound`` ``attained`` (the bottom-up latents render the forward value): for
  each pattern of window sizes (P_1, P_2) of the architectures of depth 1 and 2 (the first
  maximiser is written per slot), every K_l, D0, C. Depth 3 is tested, not derived (its chains
  check, but SymPy needs minutes for them). The ``bound`` component is tested, not derived.
* P6: depth 1 for every K1, P1; each deeper architecture of ARCHS but the last (depths 2 and 3)
  with all its sums written out.

Trivial regimes (counted apart; a confirmed verdict needs ``min_nontrivial`` instances outside
them): P5's "joint-MAP value 0 for every class" and the lower bound's "u_L = 0".

Sources: A. B. Patel, Stats 385 lecture (2017), slides "Deep Rendering Mixture Model",
"Max-Sum Inference ... push the max to the right", "The Sum-over-Paths Formulation",
"What do the Active Paths mean?", "DP proofs rely on Non-Negativity assumption (NN-DRMM)";
Patel, Nguyen, Baraniuk, "A probabilistic framework for deep learning" (NIPS 2016).
The statements are this project's formalisation (formalisations P4-P6).
"""

from __future__ import annotations

import numpy as np
import sympy as sp
from hypothesis import strategies as st

from theorems.patel2016.layer import CONVENTIONS as LAYER_CONVENTIONS
from theorems.sources import PATEL
from verify import (
    Algebra, Assumption, Cases, Claim, Derivation, Fact, Lemma, MaxOver, MaxSum, Monotone, Mutant, Regime, Theorem,
    TheoremError, Tolerance, Unfold, at_most, backwards, eq, residual, xp,
)
from verify.symbolic import Derivations
from verify.models import drmm as M

CONVENTIONS = (
    LAYER_CONVENTIONS + " Layers are numbered from the image up; Gamma_l is D_{l-1} x K_l P_l; "
    "windows never overlap; the bottom-up translation is the first maximiser in its window."
)
SOURCE = PATEL.with_conventions(CONVENTIONS)

# ----------------------------------------------------------------------------- architectures

#: ((K_1, P_1), ..., (K_L, P_L)) from the image up, with their joint configuration counts:
#: 2, 8, 64, 4 (the L = 1, K = 2 witness shape), 32, 512, 16, 192, 128, 2048. The brute force allows
#: M.MAX_CONFIGURATIONS (4096); the last, depth-3 architecture has a window of two slots in every
#: layer but the second and takes 2048 (about 1 ms per instance).
ARCHS = (
    ((1, 1),), ((1, 2),), ((2, 2),), ((2, 1),),
    ((2, 1), (1, 2)), ((2, 2), (1, 2)), ((2, 1), (2, 1)), ((3, 1), (1, 3)),
    ((2, 1), (2, 1), (1, 2)), ((2, 2), (2, 1), (1, 2)),
)
assert max(M.configurations(a) for a in ARCHS) <= M.MAX_CONFIGURATIONS



def with_widths(structure):
    """The structure with its architecture's integer sizes as fields of their own (``depth``,
    ``K1``, ``P1``, ...): a derivation's explicit sizes are structure fields, and a layer tuple
    cannot be one."""
    out = dict(structure)
    out["depth"] = len(structure["layers"])
    for l, (K, P) in enumerate(structure["layers"], start=1):
        out[f"K{l}"], out[f"P{l}"] = K, P
    return out


DEEP_STRUCTURE = st.fixed_dictionaries(
    {"layers": st.sampled_from(ARCHS), "D0": st.integers(1, 3), "C": st.integers(1, 3)}
).map(with_widths)

#: the small scope every search of the DEEP_STRUCTURE theorems covers first: each architecture (both
#: depth-3 ones included) with one pixel and one class, and with three pixels and two classes (the
#: class decision needs C >= 2); 20 structures, so a budget of 40 batches covers them all
DEEP_SCOPE = [with_widths({"layers": a, "D0": d0, "C": c}) for d0, c in ((1, 1), (3, 2)) for a in ARCHS]


def _gammas(s, x):
    return [x[f"G{l}"] for l in range(1, len(s.layers) + 1)]


def deep_instance(rng, s, p_nonneg: float = 0.6):
    """Signed image and first dictionary always; with probability ``p_nonneg`` (one coin for the
    whole instance) every upper dictionary and the templates are made non-negative (H3)."""
    nonneg = rng.coin(p_nonneg)
    x = {"I": rng.reals(s.D0)}
    for l in range(1, len(s.layers) + 1):
        G = rng.reals(M.gamma_shape(s.layers, s.D0, l))
        x[f"G{l}"] = G if l == 1 else xp.where(nonneg, xp.abs(G), G)
    mu = rng.reals((s.C, s.layers[-1][0]))
    x["mu"] = xp.where(nonneg, xp.abs(mu), mu)
    return x


def signed_instance(rng, s):
    """Every dictionary and template signed (p_nonneg = 0): (H3) fails almost surely."""
    return deep_instance(rng, s, p_nonneg=0.0)


JOINT_MAP_ZERO = Regime(
    "joint_map_zero",
    "the joint-MAP value max_g <mu_cg, I> is 0 for every class (every configuration scores <= 0; all "
    "switches off scores 0), so under (H3) both sides are 0",
    lambda s, x: xp.all(M.brute_force_scores(_gammas(s, x), x["mu"], x["I"], s.layers) == 0),
)

FORWARD_ZERO = Regime(
    "forward_pass_zero",
    "u_L = 0: the forward value is 0 for every class, below a joint max that includes the all-off "
    "configuration (value 0), and attained by switches that are all off",
    lambda s, x: xp.all(M.forward(_gammas(s, x), x["I"], s.layers) == 0),
)

NONNEG_TEMPLATES = Assumption(
    "nonnegative_templates",
    "(H3) Gamma_l >= 0 for every l >= 2 and every class template mu_c >= 0 (Gamma_1 and I may be signed)",
    lambda s, x: xp.all(x["mu"] >= 0) & xp.all(xp.asarray([xp.all(x[f"G{l}"] >= 0) for l in range(2, len(s.layers) + 1)] or [True])),
)

# Each configuration's score is mu_c^T Lambda_L^T ... Lambda_1^T I: a chain of <= 3 matrix
# products with inner sizes <= 4 (D0 <= 3, K_l P_l <= 4, K_L <= 2), so its rounding error is at
# most ~ (3 + 4 + 4 + 2) eps * <|mu_c|, v_L> ~ 3e-15 * scale (v_l = MaxPool(|Gamma_l|^T v_{l-1}),
# v_0 = |I|: the largest absolute chain of any configuration); the
# forward pass sums the same products in another order. rtol = 1e-13 leaves a 30x margin.
DEEP_TOLERANCE = Tolerance(
    atol=0.0, rtol=1e-13,
    reason="<= 3 chained products of inner size <= 4: error <= ~13 eps * scale ~ 3e-15 * scale, scale = <|mu_c|, v_L>, "
           "v_l = MaxPool(|Gamma_l|^T v_{l-1}), v_0 = |I| (largest absolute chain of any configuration); 30x margin",
)


def _forward_scores(s, x, forward=M.forward):
    return x["mu"] @ forward(_gammas(s, x), x["I"], s.layers)


def _deep_claim(forward=M.forward):
    def prop(s, x):
        G = _gammas(s, x)
        brute = M.brute_force_scores(G, x["mu"], x["I"], s.layers)
        fwd = _forward_scores(s, x, forward)
        scale = M.abs_scale(G, x["mu"], x["I"], s.layers)
        chosen = brute[xp.argmax(fwd)]  # the class the convnet picks, scored by joint MAP
        return {
            "value": residual(brute, fwd, scale),
            "class": residual(chosen, xp.max(brute), xp.max(scale)),
        }

    return prop


def _forward_with(layer_op, top_op=None):
    """A forward pass with a different layer operation (for mutants); ``top_op`` for layer L."""

    def forward(Gammas, I, layers):
        u = I
        for l, (Gamma, (K, P)) in enumerate(zip(Gammas, layers), start=1):
            op = top_op if (top_op is not None and l == len(layers)) else layer_op
            u = op(M.windows(Gamma.T @ u, K, P))
        return u

    return forward


# ----------------------------------------------------------------------------- the DRMM in SymPy
#
# Layer l (1..L, from the image up) has K_l units, P_l slots per unit's window, a dictionary G_l
# (instance array "G<l>", entry [i, P_l j + tau]: input i of the layer below, slot tau of unit j),
# switches a_l[j, tau] and translations t_l[j] (the optimised latents: a 2-D name for the K_l P_l
# switches, slot tau of window j is position P_l j + tau). Unit indices: j_l for layer l, d for
# the pixels (layer 0, D0 of them). A size that a derivation leaves symbolic is an integer Symbol
# named like the structure field it binds to (K1, P2, D0, C, ...); an explicit one is an int.

_D0 = sp.Symbol("D0", integer=True, positive=True)
_C = sp.Symbol("C", integer=True, positive=True)
_cls = sp.Symbol("c", integer=True)  # the class: every claim holds for each entry c of the score vector
_Iimg = sp.IndexedBase("I", real=True)
_ZETA = sp.IndexedBase("zeta", nonnegative=True)  # a fact's non-negative weights (instantiated per layer)
_V, _W = sp.IndexedBase("v"), sp.IndexedBase("w")  # a fact's input vector and upper weights
_zeta_s, _w_s = sp.Symbol("zeta", nonnegative=True), sp.Symbol("w")
_y = sp.Symbol("y", real=True)


class _Net:
    """One architecture for the derivations: ``widths[l-1] = (K_l, P_l)``, each an int (explicit)
    or None (symbolic, the Symbol ``K<l>`` / ``P<l>``); ``signed``: every dictionary and template
    may be negative (otherwise G_l >= 0 for l >= 2 and mu >= 0, as (H3) says)."""

    def __init__(self, widths, signed=False):
        self.L = len(widths)
        self.signed = signed
        self.K = [None] + [sp.Integer(k) if k is not None else sp.Symbol(f"K{l}", integer=True, positive=True)
                           for l, (k, _) in enumerate(widths, start=1)]
        self.P = [None] + [sp.Integer(p) if p is not None else sp.Symbol(f"P{l}", integer=True, positive=True)
                           for l, (_, p) in enumerate(widths, start=1)]
        self.mu = sp.IndexedBase("mu", real=True) if signed else sp.IndexedBase("mu", nonnegative=True)

    def size(self):
        """The explicit sizes, as structure fields."""
        out = {"depth": self.L}
        for l in range(1, self.L + 1):
            for name, v in ((f"K{l}", self.K[l]), (f"P{l}", self.P[l])):
                if v.is_Integer:
                    out[name] = int(v)
        return out

    def G(self, l):
        return sp.IndexedBase(f"G{l}", real=True) if (l == 1 or self.signed) else sp.IndexedBase(f"G{l}", nonnegative=True)

    @staticmethod
    def j(l):
        return sp.Symbol(f"j{l}" if l else "d", integer=True)

    @staticmethod
    def tau(l):
        return sp.Symbol(f"tau{l}", integer=True)

    @staticmethod
    def a(l):
        return sp.IndexedBase(f"a{l}", nonnegative=True)  # values {0, 1}

    @staticmethod
    def t(l):
        return sp.IndexedBase(f"t{l}", integer=True)

    def width(self, l):
        return _D0 if l == 0 else self.K[l]

    def latents(self, l):
        return (self.a(l), [0, 1]), (self.t(l), 0, self.P[l] - 1)

    def filt(self, l, j, tau, v):
        """(G_l^T v)[P_l j + tau] = sum_i G_l[i, P_l j + tau] v(i)."""
        i = self.j(l - 1)
        return sp.Sum(self.G(l)[i, self.P[l] * j + tau] * v(i), (i, 0, self.width(l - 1) - 1))

    def u(self, l, j):
        """The forward pass: u_0 = I, u_l[j] = max_tau ReLU((G_l^T u_{l-1})[P_l j + tau])."""
        if l == 0:
            return _Iimg[j]
        tau = self.tau(l)
        return MaxOver(sp.Max(self.filt(l, j, tau, lambda i: self.u(l - 1, i)), 0), (tau, 0, self.P[l] - 1))

    def top(self, c, v):
        """<mu_c, v_L> = sum_j mu[c, j] v(j)."""
        j = self.j(self.L)
        return sp.Sum(self.mu[c, j] * v(j), (j, 0, self.K[self.L] - 1))

    def forward(self, c):
        return self.top(c, lambda j: self.u(self.L, j))

    def down(self, l, j, w):
        """(Lambda_{g_{l+1}} w)[j] = sum_k G_{l+1}[j, P k + t[k]] a[k, t[k]] w(k): one layer rendered top-down."""
        k, t = self.j(l + 1), self.t(l + 1)
        return sp.Sum(self.G(l + 1)[j, self.P[l + 1] * k + t[k]] * self.a(l + 1)[k, t[k]] * w(k),
                      (k, 0, self.K[l + 1] - 1))

    def z(self, l, j, c):
        """z_l = Lambda_{g_{l+1}} ... Lambda_{g_L} mu_c: what layer l's units are weighted by."""
        if l == self.L:
            return self.mu[c, j]
        return self.down(l, j, lambda k: self.z(l + 1, k, c))

    def layer_score(self, l, zeta, v):
        """<Lambda_{g_l} zeta, v> = sum_j zeta(j) a_l[j, t_l[j]] (G_l^T v)[P_l j + t_l[j]]."""
        j, t = self.j(l), self.t(l)
        return sp.Sum(zeta(j) * self.a(l)[j, t[j]] * self.filt(l, j, t[j], v), (j, 0, self.K[l] - 1))

    def wrap(self, e, above):
        """max over the latents of layers above+1 .. L (layer above+1 innermost) of e."""
        for l in range(above + 1, self.L + 1):
            e = MaxOver(e, *self.latents(l))
        return e

    def objective(self, c):
        """max over every latent of every layer of <mu_cg, I> = <Lambda_{g_1} z_1, I>."""
        return self.wrap(self.layer_score(1, lambda j: self.z(1, j, c), lambda i: _Iimg[i]), 0)


def _layer_fact(net, l):
    """Patel2016.render-layer-convnet for layer l with weights zeta >= 0 and input v (the image for
    l = 1): max over a_l, t_l of <Lambda_{g_l} zeta, v> = sum_j zeta_j max_tau ReLU((G_l^T v)[P_l j + tau])."""
    v = (lambda i: _Iimg[i]) if l == 1 else (lambda i: _V[i])
    j, tau = net.j(l), net.tau(l)
    filt = net.filt(l, j, tau, v)
    relu = Fact(f"relu_scale_{l}", Claim(sp.Max(_zeta_s * _w_s, 0), "==", _zeta_s * sp.Max(_w_s, 0)),
                [eq(_zeta_s * sp.Max(_w_s, 0), Cases([_zeta_s, _w_s], "ReLU is positively homogeneous"))])
    lhs = MaxOver(net.layer_score(l, lambda k: _ZETA[k], v), *net.latents(l))
    rhs = sp.Sum(_ZETA[j] * MaxOver(sp.Max(filt, 0), (tau, 0, net.P[l] - 1)), (j, 0, net.K[l] - 1))
    t = net.t(l)
    chain = [
        eq(sp.Sum(MaxOver(_ZETA[j] * net.a(l)[j, t[j]] * net.filt(l, j, t[j], v), *net.latents(l)), (j, 0, net.K[l] - 1)),
           MaxSum(f"term j reads only unit j's switches a{l}[j, .] and translation t{l}[j]")),
        eq(sp.Sum(MaxOver(sp.Max(0, _ZETA[j] * filt), (tau, 0, net.P[l] - 1)), (j, 0, net.K[l] - 1)),
           Unfold("t_j is one variable tau; the switch at the chosen slot takes the values 0 and 1")),
        eq(sp.Sum(MaxOver(_ZETA[j] * sp.Max(filt, 0), (tau, 0, net.P[l] - 1)), (j, 0, net.K[l] - 1)),
           Lemma(relu.name, "in every unit and slot", at={_zeta_s: _ZETA[j], _w_s: filt})),
        eq(rhs, Monotone(lambda w: _ZETA[j] * w, "zeta_j >= 0: w -> zeta_j w is non-decreasing")),
    ]
    return relu, Fact(f"layer_{l}", Claim(lhs, "==", rhs), chain,
                      why=f"layer {l} is one convnet layer (patel2016.render-layer-convnet)")


def _swap_fact(net, l):
    """<Lambda_{g_{l+1}} w, v> both ways, at explicit K_l, K_{l+1}: sum_j (Lambda w)_j v_j =
    sum_k w_k a[k, t[k]] (G_{l+1}^T v)[P k + t[k]] (finite sums: exchange the order of summation)."""
    j = net.j(l)
    lhs = sp.Sum(net.down(l, j, lambda k: _W[k]) * _V[j], (j, 0, net.K[l] - 1))
    rhs = net.layer_score(l + 1, lambda k: _W[k], lambda i: _V[i])
    return Fact(f"swap_{l}", Claim(lhs, "==", rhs),
                [eq(rhs, Unfold(f"K{l} = {net.K[l]}, K{l + 1} = {net.K[l + 1]}: write out both finite double sums"))],
                why="<Lambda z, v> = <z, Lambda^T v>")


def _lemma_step(prev, fact, at, why):
    """The link that substitutes ``fact`` (instantiated ``at``) in ``prev``: the expression it reaches."""
    inst = {sp.sympify(k): sp.sympify(v) for k, v in at.items()}
    lhs, rhs = fact.claim.lhs.xreplace(inst), fact.claim.rhs.xreplace(inst)
    nxt = prev.xreplace({lhs: rhs})
    if nxt == prev:
        raise TheoremError(f"{fact.name} at {at} does not occur in the expression")
    return eq(nxt, Lemma(fact.name, why, at=at)), nxt


def push_max_derivation(widths, component="value"):
    """The P5 chain for ``widths = ((K_1, P_1), ...)`` (an int, or None for a symbolic size): see
    :func:`_push_max_derivation`. Depth >= 2 needs explicit K_l (the sums over units are exchanged
    by writing them out)."""
    return _push_max_derivation(_Net(widths), component)


def _push_max_derivation(net, component="value"):
    """Push the max to the right, layer by layer: with the latents above layer l fixed, layer l is one
    convnet layer weighted by z_l = Lambda_{g_{l+1}} ... mu_c >= 0 (a fact); exchanging the finite
    sums then makes the next layer's objective of the same form, with input u_l."""
    c = _cls
    facts, chain = [], []
    prev = net.objective(c)
    for l in range(1, net.L + 1):
        relu, layer = _layer_fact(net, l)
        facts += [relu, layer]
        at = {_ZETA[net.j(l)]: net.z(l, net.j(l), c)}
        if l > 1:
            at[_V[net.j(l - 1)]] = net.u(l - 1, net.j(l - 1))
        link, prev = _lemma_step(prev, layer, at, f"layer {l} with the latents above it fixed: its weights "
                                                  f"z_{l} are products of non-negative factors (H3)")
        chain.append(link)
        if l < net.L:
            swap = _swap_fact(net, l)
            facts.append(swap)
            at = {_W[net.j(l + 1)]: net.z(l + 1, net.j(l + 1), c), _V[net.j(l)]: net.u(l, net.j(l))}
            link, prev = _lemma_step(prev, swap, at, f"<z_{l}, u_{l}> = <Lambda_(g_{l + 1}) z_{l + 1}, u_{l}>: "
                                                     f"layer {l + 1}'s objective, input u_{l}")
            chain.append(link)
    claim = Claim(net.objective(c), "==", net.forward(c))
    return Derivation(claim=claim, chain=chain, facts=facts, component=component, size=net.size(),
                      entries=(c, 0, _C - 1))


# --- the bottom-up latents of the forward pass (patel2016.deep-maxsum-lower-bound, "attained")

_OMEGA = sp.IndexedBase("omega")  # one window's filter values, slots 0..P-1


def _first_argmax(ws):
    """[tau is the first maximiser of ws], for each tau, with H(x, 1) = [x >= 0]."""
    out, before = [], sp.Integer(0)
    for k, w in enumerate(ws[:-1]):
        here = sp.Mul(*[sp.Heaviside(w - o, 1) for o in ws[k + 1:]])
        here = (1 - before) * here if k else here
        out.append(here)
        before = before + here
    return out + [1 - before]


def _chosen(ws, values=None):
    """One unit under the bottom-up latents: its switch a_hat = [w > 0] (H(x, 0) = [x > 0]) and the
    value at the first maximiser t_hat of its window's filter values ``ws``; ``values`` (default ws) are
    what the chosen slot passes up: sum_tau [tau = t_hat] [w_tau > 0] values_tau."""
    values = ws if values is None else values
    return sp.Add(*[e * sp.Heaviside(w, 0) * v for e, w, v in zip(_first_argmax(ws), ws, values)])


def _pick_fact(name, P, tau):
    """y a_hat w_that = y max_tau ReLU(w_tau) for every weight y and window of P slots: the bottom-up
    latents pick the window's MaxPool(ReLU(.))."""
    ws = [_OMEGA[k] for k in range(P)]
    pooled = _y * MaxOver(sp.Max(_OMEGA[tau], 0), (tau, 0, P - 1))
    return Fact(name, Claim(_y * _chosen(ws), "==", pooled), [
        eq(_y * sp.Max(0, *ws), Cases(ws, "every order of the window's values and 0")),
        eq(pooled, Unfold("the max over the window's P slots")),
    ], why="[w_that > 0] w_that = max_tau ReLU(w_tau) for the first maximiser t_hat")


def _attained_derivation(net):
    """The latents the bottom-up pass picks (a_hat_l = [w_l > 0], t_hat_l the first maximiser of
    w_l = G_l^T u_{l-1} in each window, u the forward pass) render, for each class, the score
    mu_c^T Lambda_hat_L^T ... Lambda_hat_1^T I; it is the forward value. Chain: substitute the pick
    fact unit by unit from the image up (once the layers below are the forward pass, each unit's
    rendered value is a_hat w_that); each use names the weight the unit is multiplied by and
    instantiates the window's values omega[tau] with the unit's filter values, the same for a
    symbolic and an explicit slot."""
    c = _cls

    def hat(l, j):  # Lambda_hat_l^T ... Lambda_hat_1^T I at unit j of layer l
        if l == 0:
            return _Iimg[j]
        P = int(net.P[l])
        ws = [net.filt(l, j, tau, lambda i: net.u(l - 1, i)) for tau in range(P)]
        return _chosen(ws, [net.filt(l, j, tau, lambda i: hat(l - 1, i)) for tau in range(P)])

    facts = [_pick_fact(f"pick_{l}", int(net.P[l]), net.tau(l)) for l in range(1, net.L + 1)]
    claim = Claim(net.top(c, lambda j: hat(net.L, j)), "==", net.forward(c))
    prev, chain = claim.lhs, []
    for l in range(1, net.L + 1):
        j, P, fact, tau = net.j(l), int(net.P[l]), facts[l - 1], net.tau(l)
        below = lambda i: net.u(l - 1, i)  # noqa: E731 - the layers below are already the forward pass
        at = {_OMEGA[tau]: net.filt(l, j, tau, below), **{_OMEGA[k]: net.filt(l, j, k, below) for k in range(P)}}
        if l == net.L:
            weights = [net.mu[c, j]]
        else:
            k = net.j(l + 1)
            weights = [net.G(l + 1)[j, net.P[l + 1] * k + s] for s in range(int(net.P[l + 1]))]
        for y in weights:
            link, prev = _lemma_step(prev, fact, {_y: y, **at}, f"layer {l}: each unit's bottom-up latents pick its "
                                                                f"MaxPool(ReLU(.)), weight {y}")
            chain.append(link)
    return Derivation(claim=claim, chain=chain, facts=facts, component="attained", size=net.size(),
                      entries=(c, 0, _C - 1))


# --- renderings as sums over paths (patel2016.paths-sum): the latents are the instance's arrays

_x = sp.Symbol("x", integer=True)  # the pixel


def _is(t, tau):
    """[t = tau] for integers, as H(t - tau, 1) H(tau - t, 1) with H(x, 1) = [x >= 0]."""
    return sp.Heaviside(t - tau, 1) * sp.Heaviside(tau - t, 1)


def _path_net(widths):
    net = _Net(widths, signed=True)
    net.mu = sp.IndexedBase("mu", real=True)  # one template (a vector) in this theorem
    net.sw = lambda l: sp.IndexedBase(f"a{l}")  # the switches, flat: slot P_l j + tau
    net.sh = lambda l: sp.IndexedBase(f"t{l}")  # the translations
    return net


def _render(net, l, i):
    """(Lambda_{g_l} ... Lambda_{g_L} mu)[i] with Lambda_g z = G M_a T_t z and (T_t z)[P j + tau] =
    [t_j = tau] z_j: the matrix chain, one layer's finite sums at a time."""
    if l > net.L:
        return net.mu[i]
    j, tau, P = net.j(l), net.tau(l), net.P[l]
    slot = P * j + tau
    return sp.Sum(sp.Sum(net.G(l)[i, slot] * net.sw(l)[slot] * _is(net.sh(l)[j], tau) * _render(net, l + 1, j),
                         (tau, 0, P - 1)), (j, 0, net.K[l] - 1))


def _paths(net, x):
    """The sum over every path (i_L, tau_L, ..., i_1, tau_1) to pixel x of [the path is active:
    every translation picks its slot, times every switch on it (0/1)] x its weight
    mu_{i_L} prod_l G_l[i_{l-1}, P_l i_l + tau_l] (i_0 = x)."""
    term = net.mu[net.j(net.L)]
    for l in range(1, net.L + 1):
        j, tau, P = net.j(l), net.tau(l), net.P[l]
        below = x if l == 1 else net.j(l - 1)
        slot = P * j + tau
        term = term * _is(net.sh(l)[j], tau) * net.sw(l)[slot] * net.G(l)[below, slot]
    for l in range(1, net.L + 1):  # innermost: layer 1's (j_1, tau_1); the path's top end outermost
        j, tau, P = net.j(l), net.tau(l), net.P[l]
        term = sp.Sum(sp.Sum(term, (tau, 0, P - 1)), (j, 0, net.K[l] - 1))
    return term


def _paths_derivation(net):
    x = _x
    lhs, rhs = _render(net, 1, x), _paths(net, x)
    if all(net.K[l].is_Integer and net.P[l].is_Integer for l in range(1, net.L + 1)):
        link = eq(rhs, Unfold("every sum is finite: write both out; the products are the same"))
    else:
        link = eq(rhs, Algebra("one layer: the rendering's double sum is the sum over its paths"))
    return Derivation(claim=Claim(lhs, "==", rhs), chain=[link], size=net.size(), entries=(x, 0, _D0 - 1))




# ----------------------------------------------------------------------------- P5, P6 derivations


def _distinct(patterns):
    return list(dict.fromkeys(patterns))


def _unit_counts(archs):
    """The distinct unit counts (K_1, ..., K_L) of the architectures deeper than one layer."""
    return _distinct(tuple(K for K, _ in a) for a in archs if len(a) > 1)


#: P5 (value), one chain per depth: depth 1 for every K1, P1; depths 2 and 3 at each pattern of
#: unit counts in ARCHS, every P_l (the chain exchanges the finite sums over units by writing them
#: out, so K_l must be explicit there). Each is the layer-by-layer argument written as a chain.
_DEEP_NETS = [_Net(((None, None),))] + [_Net([(K, None) for K in ks]) for ks in _unit_counts(ARCHS)]
_DEEP_VALUE = Derivations(build=_push_max_derivation, each=_DEEP_NETS)
#: attained: for each pattern of window sizes of the architectures of depth 1 and 2 (the first
#: maximiser is written per slot), every K_l. The depth-3 chains (_attained_derivation at P = (1, 1, 2)
#: or (2, 1, 2)) also check, but take SymPy 40 to 120 s each on a shared 2-core machine: depth 3 is tested
_ATTAINED_NETS = [_Net([(None, P) for P in ps], signed=True)
                  for ps in _distinct(tuple(P for _, P in a) for a in ARCHS if len(a) <= 2)]
#: P6: depth 1 for every K1, P1; deeper, each architecture of ARCHS but the last (all its sums written
#: out; the last, added for the brute force at depth 3, is tested: one more chain costs ~11 s of SymPy)
_PATH_NETS = [_path_net(((None, None),))] + [_path_net(a) for a in ARCHS[:-1] if len(a) > 1]
_ATTAINED = Derivations(build=_attained_derivation, each=_ATTAINED_NETS)
_PATHS = Derivations(build=_paths_derivation, each=_PATH_NETS)


def _depth_one_mutant(sign=1, rel="==", signed=False, component="value"):
    """A wrong depth-1 claim for a mutant (no chain: the engine looks for an exact point where it
    fails): max_g <sign mu_cg, I> rel <sign mu_c, u_1>, for every K1, P1, D0 and class."""
    net, c = _Net(((None, None),), signed=signed), _cls
    lhs = MaxOver(net.layer_score(1, lambda j: sign * net.mu[c, j], lambda i: _Iimg[i]), *net.latents(1))
    return Derivation(claim=Claim(lhs, rel, net.top(c, lambda j: sign * net.u(1, j))), component=component,
                      size=net.size(), entries=(c, 0, _C - 1))




# ----------------------------------------------------------------------------- P5 theorems

deep_maxsum = Theorem(
    id="patel2016.deep-maxsum-convnet",
    title="Deep max-sum inference in the DRMM is a convnet forward pass (under H3)",
    source=SOURCE.at("lecture 'Max-Sum Inference in the Deep Rendering Model' and 'DP proofs rely on "
                     "Non-Negativity assumption (NN-DRMM)'", formalisation="p5"),
    statement=(
        r"Let $\mu_{cg} = \Lambda_{g_1}\cdots\Lambda_{g_L}\mu_c$, $\Lambda_{g_l} = \Gamma_l M_{a_l} T_{t_l}$ with "
        r"independent switches $a_l$ and local translations $t_l$ over non-overlapping windows (H2), and the "
        r"linear objective $\langle \mu_{cg}, I\rangle$ (H1). If (H3) $\Gamma_l \ge 0$ for $l \ge 2$ and "
        r"$\mu_c \ge 0$ ($\Gamma_1$ and $I$ signed), then for every class $c$: "
        r"$\max_g \langle \mu_{cg}, I\rangle = \langle \mu_c, u_L\rangle$ with $u_0 = I$, "
        r"$u_l = \operatorname{MaxPool}(\operatorname{ReLU}(\Gamma_l^\top u_{l-1}))$; hence "
        r"$\arg\max_c \langle \mu_c, u_L\rangle$ attains the joint MAP $\max_{c,g} \langle \mu_{cg}, I\rangle$."
    ),
    property=_deep_claim(),
    structure=DEEP_STRUCTURE,
    sample=deep_instance,
    tolerance=DEEP_TOLERANCE,
    assumptions=[NONNEG_TEMPLATES],
    trivial=[JOINT_MAP_ZERO],
    scope=DEEP_SCOPE,
    uses=["patel2016.render-layer-convnet", "patel2016.switch-relu", "patel2016.translation-maxpool",
          "patel2016.maxpool-relu-commute"],
    derivation=_DEEP_VALUE,  # the "class" component is tested, not derived (an argmax over classes)
    mutants=[
        Mutant("no_relu", "u_l = MaxPool(Gamma_l^T u_{l-1}) (ReLU dropped)",
               _deep_claim(_forward_with(lambda w: xp.max(w, axis=1)))),
        Mutant("sum_pool", "u_l = SumPool(ReLU(Gamma_l^T u_{l-1}))",
               _deep_claim(_forward_with(lambda w: xp.sum(xp.relu(w), axis=1)))),
        Mutant("relu_only_on_top", "ReLU only in the top layer: u_l = MaxPool(Gamma_l^T u_{l-1}) below",
               _deep_claim(_forward_with(lambda w: xp.max(w, axis=1), lambda w: xp.max(xp.relu(w), axis=1)))),
        Mutant("signed_templates", "the identity holds for templates of either sign (checked on mu -> -mu, "
                                   "a non-positive template; symbolically at depth 1)",
               lambda s, x: _deep_claim()(s, {**x, "mu": -x["mu"]}),
               derivation=_depth_one_mutant(sign=-1)),
    ],
)


def _attained_by_bottom_up(s, x):
    """<Lambda_ghat mu_c, I> for every class, with ghat the bottom-up pass's latents."""
    G = _gammas(s, x)
    switches, shifts = M.bottom_up_latents(G, x["I"], s.layers)
    return xp.stack([M.render(G, switches, shifts, x["mu"][c], s.layers) @ x["I"] for c in range(s.C)])


def _lower_bound_claim(forward=M.forward, reverse=False):
    def prop(s, x):
        G = _gammas(s, x)
        brute = M.brute_force_scores(G, x["mu"], x["I"], s.layers)
        fwd = _forward_scores(s, x, forward)
        scale = M.abs_scale(G, x["mu"], x["I"], s.layers)
        return {
            "bound": at_most(brute, fwd, scale) if reverse else at_most(fwd, brute, scale),
            "attained": residual(_attained_by_bottom_up(s, x), fwd, scale),
        }

    return prop


deep_lower_bound = Theorem(
    id="patel2016.deep-maxsum-lower-bound",
    title="Without non-negative templates the convnet forward pass is a lower bound on max-sum inference",
    source=SOURCE.at("'Without (H3) the forward pass is a lower bound'", formalisation="p5"),
    statement=(
        r"For all signed $\Gamma_1..\Gamma_L$, $\mu_c$ and $I$: $\langle \mu_c, u_L\rangle \le "
        r"\max_g \langle \mu_{cg}, I\rangle$ for every class, and the forward value is attained by the latents "
        r"$\hat g$ of the bottom-up pass ($\hat a_l = [\Gamma_l^\top u_{l-1} > 0]$, $\hat t_l$ = argmax in each "
        r"window, the same for every class): $\langle \Lambda_{\hat g}\mu_c, I\rangle = \langle \mu_c, u_L\rangle$."
    ),
    property=_lower_bound_claim(),
    structure=DEEP_STRUCTURE,
    sample=signed_instance,
    tolerance=DEEP_TOLERANCE,
    trivial=[FORWARD_ZERO],
    scope=DEEP_SCOPE,
    uses=["patel2016.deep-maxsum-convnet"],
    derivation=_ATTAINED,  # the "bound" component is tested, not derived (module docs)
    mutants=[
        Mutant("upper_bound", "the forward pass is an upper bound: max_g <mu_cg, I> <= <mu_c, u_L>",
               _lower_bound_claim(reverse=True),
               derivation=_depth_one_mutant(rel="<=", signed=True, component="bound")),
        Mutant("sum_pool", "the sum-pool forward pass is a lower bound",
               _lower_bound_claim(_forward_with(lambda w: xp.sum(xp.relu(w), axis=1)))),
        Mutant("abs_forward", "u_l = MaxPool(|Gamma_l^T u_{l-1}|) gives a lower bound",
               _lower_bound_claim(_forward_with(lambda w: xp.max(xp.abs(w), axis=1)))),
    ],
)


def _signed_class_property(s, x):
    return {"class": _deep_claim()(s, x)["class"]}


signed_class = Theorem(
    id="patel2016.deep-maxsum-signed-class",
    title="Without H3 the convnet's class decision agrees with joint MAP (stated non-theorem)",
    source=SOURCE.at("'Without (H3) ... the class decision can differ' (stated non-theorem)", formalisation="p5"),
    statement=(
        r"(false) For signed templates, $\hat c = \arg\max_c \langle \mu_c, u_L\rangle$ attains "
        r"$\max_{c, g} \langle \mu_{cg}, I\rangle$."
    ),
    property=_signed_class_property,
    structure=DEEP_STRUCTURE,
    sample=signed_instance,
    tolerance=DEEP_TOLERANCE,
    expect="false",
    scope=DEEP_SCOPE,
    uses=["patel2016.deep-maxsum-lower-bound"],
    # how often the class decision differs, one layer to three (a finding in the certificate)
    rates_on=[with_widths({"layers": layers, "D0": 3, "C": 3}) for layers in (((2, 2),), ((2, 2), (1, 2)), ((2, 1), (2, 1), (1, 2)))],
)


# ----------------------------------------------------------------------------- P4: priors give biases

PRIOR_STRUCTURE = st.fixed_dictionaries({"n": st.integers(1, 3), "extra": st.integers(0, 2)})


def prior_instance(rng, s):
    """Columns lambda_i: disjoint supports (exactly orthogonal), scaled Householder columns
    (orthogonal to rounding), or generic Gaussian columns (not orthogonal), one of three."""
    n, D = s.n, s.n + s.extra
    mode = rng.integers(0, 3)
    g = rng.reals(D)
    owner = np.arange(D) % n
    disjoint = xp.where(owner[:, None] == np.arange(n)[None, :], g[:, None], 0.0)
    v = rng.normal(D)
    vv = xp.sum(v * v)  # v = 0 (a guided or shrunk draw can reach it) gives H = I, still orthogonal
    H = xp.eye(D) - 2.0 * xp.outer(v, v) / xp.where(vv > 0, vv, 1.0)
    householder = H[:, :n] * rng.reals(n)[None, :]
    generic = rng.reals((D, n))
    Lam = xp.where(mode == 0, disjoint, xp.where(mode == 1, householder, generic))
    return {
        "Lambda": Lam, "I": rng.reals(D), "z": rng.reals(n),
        # sigma^2 = exp(log_sigma2) and pi_i = 1/(1 + exp(-logit_pi_i)): every float is a valid value,
        # so shrinking a counterexample (entries -> 0, +-1, ...) never leaves the model
        "log_sigma2": rng.uniform((), -1.5, 1.5), "logit_pi": rng.uniform(n, -3.0, 3.0),
    }


def _noise_and_prior(x):
    """sigma^2, log pi_i, log(1 - pi_i) from the instance's unconstrained parameters."""
    th = x["logit_pi"]
    return xp.exp(x["log_sigma2"]), -xp.log(1 + xp.exp(-th)), -xp.log(1 + xp.exp(th))


def _log_joint(x, A):
    """log p(I, a) for every row a of A, without -(D/2) log(2 pi sigma^2) (the same for every a)."""
    Lam, I, z = x["Lambda"], x["I"], x["z"]
    s2, log_pi, log_1mpi = _noise_and_prior(x)
    R = I[None, :] - (A * z[None, :]) @ Lam.T
    return -xp.sum(R * R, axis=1) / (2 * s2) + A @ log_pi + (1 - A) @ log_1mpi


def _prior_parts(x):
    Lam, I, z = x["Lambda"], x["I"], x["z"]
    s2, log_pi, log_1mpi = _noise_and_prior(x)
    sq = xp.sum(Lam * Lam, axis=0)  # ||lambda_i||^2
    drive = z * (Lam.T @ I) / s2  # w_i^T I with w_i = z_i lambda_i / sigma^2
    bias = -z * z * sq / (2 * s2) + (log_pi - log_1mpi)  # log(pi_i / (1 - pi_i))
    const = -xp.sum(I * I) / (2 * s2) + xp.sum(log_1mpi)
    norms = xp.sqrt(sq)
    scale = (xp.sqrt(xp.sum(I * I)) + xp.sum(xp.abs(z) * norms)) ** 2 / (2 * s2) \
        + xp.sum(xp.abs(log_pi) + xp.abs(log_1mpi))
    return drive, bias, const, scale


def _log_odds(x):
    _, log_pi, log_1mpi = _noise_and_prior(x)
    return log_pi - log_1mpi


def _prior_claim(rhs_of):
    def prop(s, x):
        A = M.switch_table(s.n).astype(np.float64)
        best = xp.max(_log_joint(x, A))
        drive, bias, const, scale = _prior_parts(x)
        out = {"value": residual(best, rhs_of(drive, bias, const, x), scale)}
        a_hat = xp.heaviside(drive + bias)
        out["argmax"] = residual(_log_joint(x, a_hat[None, :])[0], best, scale)
        return out

    return prop


ORTHOGONAL = Assumption(
    "orthogonal_columns",
    "the rendering columns are pairwise orthogonal: |lambda_i^T lambda_j| <= 1e-13 ||lambda_i|| ||lambda_j|| (i != j)",
    lambda s, x: xp.all(
        (xp.abs(x["Lambda"].T @ x["Lambda"])
         <= 1e-13 * xp.sqrt(xp.sum(x["Lambda"] ** 2, axis=0))[:, None] * xp.sqrt(xp.sum(x["Lambda"] ** 2, axis=0))[None, :])
        | xp.asarray(np.eye(s.n, dtype=bool))
    ),
    reason="Householder columns are orthogonal only to rounding (~D eps relative); 1e-13 admits them",
)


# --- P4 symbolically, for every n and D. The instance's arrays by name: Lambda (D x n), I, z, logit_pi
# (pi_i = 1/(1 + exp(-logit_pi_i))) and log_sigma2; D = n + extra. The columns' orthogonality is
# the one premise that is not derived: the claim's left side is log p(I, a) with its squared norm in
# Gram form *without the cross terms* a_i a_k z_i z_k lambda_i^T lambda_k (i != k), which is its
# value exactly when the columns are orthogonal (the cross-check compares it with the property's
# log p(I, a) on instances meeting the assumption).

_Lam, _zw, _logit = (sp.IndexedBase(name, real=True) for name in ("Lambda", "z", "logit_pi"))
_log_s2 = sp.Symbol("log_sigma2", real=True)
_sw = sp.IndexedBase("a")  # the switches (optimised)
_pi, _pd = sp.symbols("i d", integer=True)
_n, _Dp = sp.symbols("n D", integer=True, positive=True)
_PRIOR_BIND = {"D": lambda s: s.n + s.extra}
_s2 = sp.exp(_log_s2)


def _log_pi(i):
    return -sp.log(1 + sp.exp(-_logit[i]))


def _log_1mpi(i):
    return -sp.log(1 + sp.exp(_logit[i]))


def _over_pixels(f):
    return sp.Sum(f(_pd), (_pd, 0, _Dp - 1))


def _over_units(f):
    return sp.Sum(f(_pi), (_pi, 0, _n - 1))


def _drive(i):
    """lambda_i^T I."""
    return _over_pixels(lambda d: _Lam[d, i] * _Iimg[d])


def _sq(i):
    """||lambda_i||^2."""
    return _over_pixels(lambda d: _Lam[d, i] ** 2)


def _log_joint_sym(a):
    """log p(I, a) (without the normaliser), its squared norm ||I - sum_i a_i z_i lambda_i||^2 in Gram
    form for orthogonal columns: ||I||^2 - 2 sum_i a_i z_i lambda_i^T I + sum_i a_i^2 z_i^2 ||lambda_i||^2."""
    norm2 = (_over_pixels(lambda d: _Iimg[d] ** 2) - 2 * _over_units(lambda i: a(i) * _zw[i] * _drive(i))
             + _over_units(lambda i: a(i) ** 2 * _zw[i] ** 2 * _sq(i)))
    return -norm2 / (2 * _s2) + _over_units(lambda i: a(i) * _log_pi(i) + (1 - a(i)) * _log_1mpi(i))


_PRIOR_CONST = -_over_pixels(lambda d: _Iimg[d] ** 2) / (2 * _s2) + _over_units(_log_1mpi)


def _unit_gain(i):
    """w_i^T I + b_i = z_i lambda_i^T I / sigma^2 - z_i^2 ||lambda_i||^2 / (2 sigma^2) + log(pi_i / (1 - pi_i))."""
    return _zw[i] * _drive(i) / _s2 - _zw[i] ** 2 * _sq(i) / (2 * _s2) + _log_pi(i) - _log_1mpi(i)


def _unit_term(a, i):
    """What unit i adds to const for its switch value a: a h_i + (a - a^2) z_i^2 ||lambda_i||^2 / (2 sigma^2)
    (the second term is 0 for a in {0, 1})."""
    return a * _unit_gain(i) + (a - a ** 2) * _zw[i] ** 2 * _sq(i) / (2 * _s2)


def _regrouped(a):
    return _PRIOR_CONST + _over_units(lambda i: _unit_term(a(i), i))


def _switch(i):
    return _sw[i]


def _a_hat(i):
    """The maximiser [w_i^T I + b_i > 0]."""
    return sp.Piecewise((1, _unit_gain(i) > 0), (0, True))


_PRIOR_OBJECTIVE = MaxOver(_log_joint_sym(_switch), (_sw, [0, 1]))
_BIASED_RELUS = _PRIOR_CONST + _over_units(lambda i: sp.Max(_unit_gain(i), 0))
_REGROUP = Fact("regroup", Claim(_log_joint_sym(_switch), "==", _regrouped(_switch)),
                [eq(_regrouped(_switch), Algebra("expand; collect the terms of each switch a_i"))],
                why="log p(I, a) = const + sum_i (a_i h_i + (a_i - a_i^2) k_i)")
_REGROUP_BACK = Fact("regroup_back", Claim(_regrouped(_switch), "==", _log_joint_sym(_switch)),
                     [eq(_log_joint_sym(_switch), Algebra("the same identity, read right to left"))])
_ReLU_PICK = Fact("relu_pick", Claim(sp.Piecewise((_y, _y > 0), (0, True)), "==", sp.Max(_y, 0)),
                  [eq(sp.Max(_y, 0), Cases([_y], "the sign of y"))], why="[y > 0] y = ReLU(y)")
_UNIT_MAX = [  # max over the switches of const + sum_i (unit i's term): push the max in, one switch at a time
    eq(_PRIOR_CONST + MaxOver(_over_units(lambda i: _unit_term(_sw[i], i)), (_sw, [0, 1])),
       Monotone(lambda w: _PRIOR_CONST + w, "adding the constant (no switch in it) is non-decreasing")),
    eq(_PRIOR_CONST + _over_units(lambda i: MaxOver(_unit_term(_sw[i], i), (_sw, [0, 1]))),
       MaxSum("term i reads only the switch a_i")),
    eq(_BIASED_RELUS, Unfold("a_i takes the values 0 (term 0) and 1 (term h_i)")),
]

_PRIOR_VALUE = Derivation(
    component="value", bind=_PRIOR_BIND, facts=[_REGROUP],
    claim=Claim(_PRIOR_OBJECTIVE, "==", _BIASED_RELUS),
    chain=[eq(MaxOver(_regrouped(_switch), (_sw, [0, 1])), Lemma("regroup", "under the max, for every a")), *_UNIT_MAX],
)

_at_hat = {_sw[_pi]: _a_hat(_pi)}
_PRIOR_ARGMAX = Derivation(
    component="argmax", bind=_PRIOR_BIND, facts=[_REGROUP, _REGROUP_BACK, _ReLU_PICK],
    claim=Claim(_log_joint_sym(_switch).xreplace(_at_hat), "==", _PRIOR_OBJECTIVE),
    chain=[
        eq(_regrouped(_switch).xreplace(_at_hat), Lemma("regroup", "at a = a_hat", at=_at_hat)),
        eq(_BIASED_RELUS, Lemma("relu_pick", "in every unit", at={_y: _unit_gain(_pi)})),
        *backwards(_UNIT_MAX, MaxOver(_regrouped(_switch), (_sw, [0, 1]))),
        eq(_PRIOR_OBJECTIVE, Lemma("regroup_back", "under the max, for every a")),
    ],
)


prior_bias = Theorem(
    id="patel2016.prior-bias-relu",
    title="Gaussian noise and Bernoulli switch priors give biased ReLUs",
    source=SOURCE.at("lecture 'Max-Sum Inference in the Shallow Rendering Model' with the prior on switches; "
                     "the exact constant is worked out here", formalisation="p4"),
    statement=(
        r"Let $I = \sum_i a_i z_i \lambda_i + \varepsilon$, $\varepsilon \sim N(0, \sigma^2 \mathbf 1)$, "
        r"$a_i \sim \mathrm{Bern}(\pi_i)$ independent, so $\log p(I, a) = -\|I - \sum_i a_i z_i\lambda_i\|^2/(2\sigma^2) "
        r"+ \sum_i [a_i \log\pi_i + (1 - a_i)\log(1-\pi_i)] - \tfrac D2 \log(2\pi\sigma^2)$. If the columns "
        r"$\lambda_i$ are pairwise orthogonal, $\max_{a \in \{0,1\}^n} \log p(I, a) = -\|I\|^2/(2\sigma^2) + "
        r"\sum_i \log(1-\pi_i) - \tfrac D2\log(2\pi\sigma^2) + \sum_i \operatorname{ReLU}(w_i^\top I + b_i)$ with "
        r"$w_i = z_i\lambda_i/\sigma^2$, $b_i = -z_i^2\|\lambda_i\|^2/(2\sigma^2) + \log(\pi_i/(1-\pi_i))$, attained at "
        r"$\hat a_i = [w_i^\top I + b_i > 0]$."
    ),
    property=_prior_claim(lambda drive, bias, const, x: const + xp.sum(xp.relu(drive + bias))),
    structure=PRIOR_STRUCTURE,
    sample=prior_instance,
    tolerance=Tolerance(
        atol=0.0, rtol=1e-11,
        reason="the assumption admits 1e-13 relative non-orthogonality (<= 2e-13 * scale in the cross terms); "
               "<= 2^3 sums of <= 10 terms plus logs: rounding ~1e-14 * scale; scale = (||I|| + sum |z_i| ||lambda_i||)^2"
               "/(2 sigma^2) + sum |log pi_i| + |log(1 - pi_i)|; >= 50x margin",
    ),
    assumptions=[ORTHOGONAL],
    conventions="The Gaussian normaliser -(D/2) log(2 pi sigma^2) is the same for every a and is "
                              "left out of both sides. Instances store log sigma^2 and logit(pi_i), so every "
                              "float is a valid model (shrinking cannot produce pi = 0 or sigma = 0).",
    uses=["patel2016.switch-relu"],
    derivation=[_PRIOR_VALUE, _PRIOR_ARGMAX],
    mutants=[
        Mutant("no_prior_term", "bias b_i = -z_i^2 ||lambda_i||^2/(2 sigma^2) (log-odds dropped)",
               _prior_claim(lambda d, b, c, x: c + xp.sum(xp.relu(d + b - _log_odds(x))))),
        Mutant("bias_missing_half", "bias -z_i^2 ||lambda_i||^2/sigma^2 + log-odds (factor 1/2 lost)",
               _prior_claim(lambda d, b, c, x: c + xp.sum(xp.relu(
                   d - x["z"] ** 2 * xp.sum(x["Lambda"] ** 2, axis=0) / _noise_and_prior(x)[0] + _log_odds(x))))),
        Mutant("log_prior_not_odds", "bias uses log pi_i instead of log(pi_i/(1 - pi_i))",
               _prior_claim(lambda d, b, c, x: c + xp.sum(xp.relu(d + b - _log_odds(x) + _noise_and_prior(x)[1])))),
        Mutant("relu_of_sum", "const + ReLU(sum_i (w_i^T I + b_i))",
               _prior_claim(lambda d, b, c, x: c + xp.relu(xp.sum(d + b)))),
    ],
)


# ----------------------------------------------------------------------------- P6: sum over paths

PATH_STRUCTURE = st.fixed_dictionaries({"layers": st.sampled_from(ARCHS), "D0": st.integers(1, 3)}).map(with_widths)


def path_instance(rng, s):
    x = {"mu": rng.reals(s.layers[-1][0])}
    for l, (K, P) in enumerate(s.layers, start=1):
        x[f"G{l}"] = rng.reals(M.gamma_shape(s.layers, s.D0, l))
        x[f"a{l}"] = rng.coin(0.6, K * P).astype(np.int64)
        x[f"t{l}"] = rng.integers(0, P, K)
    return x


def _latents(s, x):
    L = len(s.layers)
    return [x[f"a{l}"] for l in range(1, L + 1)], [x[f"t{l}"] for l in range(1, L + 1)]


def _paths_claim(mask_of, template=lambda x: x["mu"]):
    def prop(s, x):
        G = _gammas(s, x)
        switches, shifts = _latents(s, x)
        image = M.render(G, switches, shifts, x["mu"], s.layers)
        weight, on, placed, pixel = M.path_terms(G, switches, shifts, template(x), s.layers, s.D0)
        total = M.sum_over_paths(weight, mask_of(on, placed), pixel, s.D0)
        aw, _, _, _ = M.path_terms([xp.abs(g) for g in G], switches, shifts, xp.abs(x["mu"]), s.layers, s.D0)
        scale = M.sum_over_paths(aw, placed, pixel, s.D0)
        return residual(image, total, scale)

    return prop


paths_sum = Theorem(
    id="patel2016.paths-sum",
    title="A DRMM rendering is a sum over active paths of products of path weights",
    source=SOURCE.at("lecture 'The Sum-over-Paths Formulation' and 'What do the Active Paths mean?'",
                     formalisation="p6"),
    statement=(
        r"For latents $g = (a_l, t_l)_l$: $(\Lambda_{g_1}\cdots\Lambda_{g_L}\mu)_x = \sum_{p} \mu_{i_L} "
        r"\prod_{l=1}^{L} \Gamma_l[i_{l-1}, P_l i_l + \tau_l]$, the sum over the paths "
        r"$p = (i_L, \tau_L, \dots, i_1, \tau_1, i_0 = x)$ that are active: every slot is the one its "
        r"translation picks ($\tau_l = t_{l, i_l}$) and every switch on the path is on "
        r"($a_l[P_l i_l + \tau_l] = 1$). Inactive paths contribute nothing."
    ),
    property=_paths_claim(lambda on, placed: on & placed),
    structure=PATH_STRUCTURE,
    sample=path_instance,
    tolerance=Tolerance(
        atol=0.0, rtol=1e-13,
        reason="the same <= 24 products summed in two orders (matrix chain vs path list): error <= ~10 eps * "
               "scale, scale = sum over placed paths of |products|; 40x margin",
    ),
    uses=[],
    derivation=_PATHS,
    mutants=[
        Mutant("inactive_paths_count", "the sum runs over every placed path, switches ignored",
               _paths_claim(lambda on, placed: placed)),
        Mutant("translations_ignored", "the sum runs over every path with its switches on, whatever the translation",
               _paths_claim(lambda on, placed: on)),
        Mutant("template_dropped", "path weights omit the top template mu",
               _paths_claim(lambda on, placed: on & placed, template=lambda x: xp.ones_like(x["mu"]))),
    ],
)
