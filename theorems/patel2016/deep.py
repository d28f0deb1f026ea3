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
Brute force: every joint latent configuration is enumerated, at most 1024 of them here
(``prod_l 2^(K_l P_l) P_l^(K_l)``, see ARCHS); switch priors: 2^n settings, n <= 3.

Sources: A. B. Patel, Stats 385 lecture (2017), slides "Deep Rendering Mixture Model",
"Max-Sum Inference ... push the max to the right", "The Sum-over-Paths Formulation",
"What do the Active Paths mean?", "DP proofs rely on Non-Negativity assumption (NN-DRMM)";
Patel, Nguyen, Baraniuk, "A probabilistic framework for deep learning" (NIPS 2016).
The statements are this project's formalisation (formalisations P4-P6).
"""

from __future__ import annotations

import itertools

import numpy as np
import sympy as sp
from hypothesis import strategies as st

from theorems.patel2016.layer import CONVENTIONS as LAYER_CONVENTIONS
from theorems.sources import PATEL
from verify import (
    Assumption,
    Cases,
    Derivation,
    Equal,
    Monotone,
    Mutant,
    Separable,
    Theorem,
    Tolerance,
    residual,
    up_to,
    xp,
)
from verify.models import drmm as M

CONVENTIONS = (
    LAYER_CONVENTIONS + " Layers are numbered from the image up; Gamma_l is D_{l-1} x K_l P_l; "
    "windows never overlap; the bottom-up translation is the first maximiser in its window."
)
SOURCE = PATEL.with_conventions(CONVENTIONS)

# ----------------------------------------------------------------------------- architectures

#: ((K_1, P_1), ..., (K_L, P_L)) from the image up, with their joint configuration counts:
#: 2, 8, 64, 4 (the L = 1, K = 2 witness shape), 32, 512, 16, 192, 128. At most 1024 is allowed.
ARCHS = (
    ((1, 1),), ((1, 2),), ((2, 2),), ((2, 1),),
    ((2, 1), (1, 2)), ((2, 2), (1, 2)), ((2, 1), (2, 1)), ((3, 1), (1, 3)),
    ((2, 1), (2, 1), (1, 2)),
)
assert max(M.configurations(a) for a in ARCHS) <= 1024

DEEP_STRUCTURE = st.fixed_dictionaries(
    {"layers": st.sampled_from(ARCHS), "D0": st.integers(1, 3), "C": st.integers(1, 3)}
)


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


# ----------------------------------------------------------------------------- P5 derivation

_a, _t, _zI, _uI = sp.IndexedBase("a"), sp.IndexedBase("t"), sp.IndexedBase("z"), sp.IndexedBase("u")
_j = sp.Symbol("j", integer=True)
_c, _w, _w0, _w1 = sp.symbols("c w w0 w1", real=True)
_zeta, _m = sp.symbols("zeta m", nonnegative=True)
_u0, _u1 = sp.symbols("u0 u1", real=True)
_gam = sp.Symbol("gamma", real=True)


def _two_layer_instance(G2):
    """Layer 1: K1 = 2 units, P1 = 1 (u = Gamma_1^T I = (u0, u1), signed); layer 2: K2 = 1 unit,
    a window of P2 = 2 slots with dictionary G2 (2 x 2), template mu = 1. Left: the max over all
    2^2 * 2^2 * 2 joint latents (a1, a2, t2) of <Lambda_g1 Lambda_g2 mu, I>; right: the forward pass."""
    lhs = sp.Max(*[a2[t2] * (G2[0, t2] * a1[0] * _u0 + G2[1, t2] * a1[1] * _u1)
                   for a1 in itertools.product([0, 1], repeat=2) for a2 in itertools.product([0, 1], repeat=2)
                   for t2 in (0, 1)])
    r0, r1 = sp.Max(_u0, 0), sp.Max(_u1, 0)
    rhs = sp.Max(sp.Max(G2[0, 0] * r0 + G2[1, 0] * r1, 0), sp.Max(G2[0, 1] * r0 + G2[1, 1] * r1, 0))
    return lhs, rhs


def _chain_instance():
    """Layer 1: K1 = 1, P1 = 2 (u = (u0, u1)); layer 2: K2 = P2 = 1 with a signed scalar
    dictionary gamma; mu = 1. Max over all 2^2 * 2 * 2 latents vs the forward pass."""
    lhs = sp.Max(*[a2 * _gam * a1[t1] * (_u0, _u1)[t1]
                   for a1 in itertools.product([0, 1], repeat=2) for t1 in (0, 1) for a2 in (0, 1)])
    rhs = sp.Max(_gam * sp.Max(sp.Max(_u0, 0), sp.Max(_u1, 0)), 0)
    return lhs, rhs


_G2 = sp.Matrix(2, 2, sp.symbols("g00 g01 g10 g11", nonnegative=True))
_a2s = sp.symbols("b0 b1", nonnegative=True)  # switches of layer 2, as non-negative reals

_PUSH_MAX_STEPS = [
    Separable(_zI[_j] * _a[_j, _t[_j]] * _uI[_j, _t[_j]], optimise=[_a, _t], index=_j,
              why="fix the latents of layers 2..L; z = Lambda_g2 ... Lambda_gL mu_c is then fixed and "
                  "<Lambda_g1 z, I> = sum_j z_j a1[j, t_j] u[j, t_j] with u = Gamma_1^T I: push max_g1 right, "
                  "window by window"),
    Cases(sp.Max(0 * _c, 1 * _c), sp.Max(_c, 0), [_c], why="max over one switch is ReLU (patel2016.switch-relu)"),
    Cases(sp.Max(_zeta * _w, 0), _zeta * sp.Max(_w, 0), [_zeta, _w],
          why="(H3) z_j >= 0 leaves the ReLU: ReLU(z_j w) = z_j ReLU(w)"),
    Monotone(_zeta * _w, _w, why="z_j >= 0: max over the window's translations of z_j ReLU(u) = z_j MaxPool(ReLU(u))"),
    Cases(_G2[0, 0] * _a2s[0] * _m, 0, [], relation=">=",
          why="(H3) z = Gamma_2 M_a2 T_t2 mu has entries sum Gamma_2[i,k] a_k mu_j >= 0: products of "
              "non-negative factors (M_a and T_t are 0/1), so the step above applies for every upper latent"),
    Cases(sp.Max(_m * _w0, _m * _w1), _m * sp.Max(_w0, _w1), [_m, _w0, _w1],
          why="positive homogeneity: a template scale m >= 0 leaves the outer max (so mu = 1 below is general)"),
    Cases(*_two_layer_instance(_G2), [_u0, _u1],
          why="cross-check, depth 2: K1 = 2, P1 = 1 (signed u = Gamma_1^T I), K2 = 1, P2 = 2 with symbolic "
              "Gamma_2 >= 0, mu = 1: all 32 joint latents vs MaxPool(ReLU(Gamma_2^T ReLU(u)))"),
]

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
    uses=["patel2016.render-layer-convnet", "patel2016.switch-relu", "patel2016.translation-maxpool",
          "patel2016.maxpool-relu-commute"],
    derivation=Derivation(scope=up_to(2), steps=_PUSH_MAX_STEPS),
    mutants=[
        Mutant("no_relu", "u_l = MaxPool(Gamma_l^T u_{l-1}) (ReLU dropped)",
               _deep_claim(_forward_with(lambda w: xp.max(w, axis=1)))),
        Mutant("sum_pool", "u_l = SumPool(ReLU(Gamma_l^T u_{l-1}))",
               _deep_claim(_forward_with(lambda w: xp.sum(xp.relu(w), axis=1)))),
        Mutant("relu_only_on_top", "ReLU only in the top layer: u_l = MaxPool(Gamma_l^T u_{l-1}) below",
               _deep_claim(_forward_with(lambda w: xp.max(w, axis=1), lambda w: xp.max(xp.relu(w), axis=1)))),
        Mutant("signed_templates", "the identity holds for templates of either sign (checked on mu -> -mu, "
                                   "a non-positive template; symbolically with a signed Gamma_2)",
               lambda s, x: _deep_claim()(s, {**x, "mu": -x["mu"]}),
               derivation=Derivation([Cases(*_chain_instance(), [_gam, _u0, _u1],
                                            why="depth 2 with a signed gamma: all latents vs the forward pass")])),
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
        gap = xp.relu(brute - fwd) if reverse else xp.relu(fwd - brute)
        return {
            "bound": residual(gap, 0 * gap, scale),
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
    uses=["patel2016.deep-maxsum-convnet"],
    derivation=Derivation(
        scope=up_to(2),
        steps=[
            Cases(sp.Piecewise((1, _w > 0), (0, True)) * _w, sp.Max(_w, 0), [_w],
                  why="the bottom-up switch a = [w > 0] passes ReLU(w): M_ahat Gamma^T u = ReLU(Gamma^T u)"),
            Cases(sp.Piecewise((_w0, _w0 >= _w1), (_w1, True)), sp.Max(_w0, _w1), [_w0, _w1],
                  why="the bottom-up translation (first maximiser) picks the window's max: T_that^T v = MaxPool(v)"),
            Cases(sp.Max(_w0, _w1), _w0, [_w0, _w1], relation=">=",
                  why="so u_L = Lambda_ghat_L^T ... Lambda_ghat_1^T I (layer by layer, the two steps above) and "
                      "<mu_c, u_L> = <mu_c ghat, I> <= max_g <mu_cg, I>: a max is at least any member"),
            Cases(*_chain_instance(), [_gam, _u0, _u1], relation=">=",
                  why="cross-check, depth 2 with a signed gamma: max over all 16 latents >= forward pass"),
        ],
    ),
    mutants=[
        Mutant("upper_bound", "the forward pass is an upper bound: max_g <mu_cg, I> <= <mu_c, u_L>",
               _lower_bound_claim(reverse=True),
               derivation=Derivation([Cases(*reversed(_chain_instance()), [_gam, _u0, _u1], relation=">=",
                                            why="forward pass >= max over latents")])),
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
    uses=["patel2016.deep-maxsum-lower-bound"],
    # how often the class decision differs, one layer to three (a finding in the certificate)
    rates_on=[{"layers": layers, "D0": 3, "C": 3} for layers in (((2, 2),), ((2, 2), (1, 2)), ((2, 1), (2, 1), (1, 2)))],
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
    H = xp.eye(D) - 2.0 * xp.outer(v, v) / xp.sum(v * v)
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

_r, _s2 = sp.Symbol("r", nonnegative=True), sp.Symbol("sigma2", positive=True)


def _prior_explicit(n: int) -> list:
    """Every a in {0,1}^n: log p(I, a) in Gram form (p_i = <lambda_i, I>, q_i = ||lambda_i||^2,
    r = ||I||^2, lambda_i^T lambda_j = 0 for i != j) equals const + sum_i a_i (w_i^T I + b_i)."""
    p, z = sp.symbols(f"p1:{n + 1}", real=True), sp.symbols(f"z1:{n + 1}", real=True)
    q, pi = sp.symbols(f"q1:{n + 1}", nonnegative=True), sp.symbols(f"pi1:{n + 1}", positive=True)
    const = -_r / (2 * _s2) + sum(sp.log(1 - pi[i]) for i in range(n))
    h = [z[i] * p[i] / _s2 - z[i] ** 2 * q[i] / (2 * _s2) + sp.log(pi[i]) - sp.log(1 - pi[i]) for i in range(n)]
    steps = []
    for a in itertools.product([0, 1], repeat=n):
        norm2 = _r - 2 * sum(a[i] * z[i] * p[i] for i in range(n)) + sum(a[i] ** 2 * z[i] ** 2 * q[i] for i in range(n))
        lhs = -norm2 / (2 * _s2) + sum(a[i] * sp.log(pi[i]) + (1 - a[i]) * sp.log(1 - pi[i]) for i in range(n))
        steps.append(Equal(lhs, const + sum(a[i] * h[i] for i in range(n)),
                           why=f"n = {n}, a = {a}: log p(I, a) = const + sum_i a_i (w_i^T I + b_i)"))
    return steps


def _gram_expansion() -> Equal:
    """||I - c1 l1 - c2 l2||^2 = r - 2 sum c_i p_i + sum_ij c_i c_j G_ij, in D = 3 coordinates."""
    I = sp.symbols("I1:4", real=True)
    l = [sp.symbols(f"l{i}_1:4", real=True) for i in (1, 2)]
    c = sp.symbols("c1 c2", real=True)
    dot = lambda u, v: sum(ui * vi for ui, vi in zip(u, v))
    lhs = sum((I[k] - c[0] * l[0][k] - c[1] * l[1][k]) ** 2 for k in range(3))
    rhs = dot(I, I) - 2 * sum(c[i] * dot(l[i], I) for i in range(2)) + sum(
        c[i] * c[j] * dot(l[i], l[j]) for i in range(2) for j in range(2))
    return Equal(lhs, rhs, why="Gram form of the squared residual (D = 3, two columns): orthogonality then "
                               "kills the cross terms c_i c_j lambda_i^T lambda_j, i != j")


_h = sp.Symbol("h", real=True)
_hI = sp.IndexedBase("h")
_i = sp.Symbol("i", integer=True)

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
    derivation=Derivation(
        scope=up_to(3),
        steps=[
            _gram_expansion(),
            *[step for n in (1, 2, 3) for step in _prior_explicit(n)],
            Separable(_a[_i] * _hI[_i], optimise=[_a], index=_i,
                      why="log p(I, a) = const + sum_i a_i h_i: term i depends on a_i only"),
            Cases(sp.Max(0 * _h, 1 * _h), sp.Max(_h, 0), [_h], why="max over a_i in {0,1} of a_i h_i is ReLU(h_i)"),
            Cases(sp.Piecewise((1, _h > 0), (0, True)) * _h, sp.Max(_h, 0), [_h], why="a_i = [h_i > 0] attains it"),
        ],
    ),
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

PATH_STRUCTURE = st.fixed_dictionaries({"layers": st.sampled_from(ARCHS), "D0": st.integers(1, 3)})


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


def _path_sum_explicit() -> list:
    """Depth 2: D0 = 2, layer 1 K1 = 2, P1 = 2 (Gamma_1 2 x 4), layer 2 K2 = 1, P2 = 2 (Gamma_2
    2 x 2), symbolic switches; for every translation (t1, t2), each pixel of the rendering equals
    the sum over the placed paths of mu * prod (switch * dictionary entry)."""
    G1 = sp.Matrix(2, 4, lambda i, j: sp.Symbol(f"G1_{i}{j}", real=True))
    G2 = sp.Matrix(2, 2, lambda i, j: sp.Symbol(f"G2_{i}{j}", real=True))
    a1, a2 = sp.symbols("a1_0:4", real=True), sp.symbols("a2_0:2", real=True)
    mu = sp.Symbol("mu", real=True)
    steps = []
    for t1 in itertools.product(range(2), repeat=2):
        for (t2,) in itertools.product(range(2), repeat=1):
            T2 = sp.zeros(2, 1)
            T2[t2, 0] = 1
            T1 = sp.zeros(4, 2)
            for j in range(2):
                T1[2 * j + t1[j], j] = 1
            image = G1 * sp.diag(*a1) * T1 * G2 * sp.diag(*a2) * T2 * sp.Matrix([mu])
            for x in range(2):
                paths = sum(mu * a2[t2] * G2[i1, t2] * a1[2 * i1 + t1[i1]] * G1[x, 2 * i1 + t1[i1]] for i1 in range(2))
                steps.append(Equal(image[x], paths, why=f"t1 = {t1}, t2 = {t2}, pixel {x}: rendering = sum over "
                                                       f"the 2 placed paths mu -> slot -> unit -> slot -> pixel"))
    return steps


def _active_only_explicit() -> Equal:
    """Same depth-2 shape with numeric latents a1 = (1, 1, 0, 1), t1 = (0, 0), a2 = (1, 1), t2 = 0:
    the path through unit 1 hits the switched-off slot 2, so only unit 0's path is active and the
    pixel equals mu Gamma_2[0, 0] Gamma_1[x, 0] (weights without switch factors)."""
    G1 = sp.Matrix(2, 4, lambda i, j: sp.Symbol(f"G1_{i}{j}", real=True))
    G2 = sp.Matrix(2, 2, lambda i, j: sp.Symbol(f"G2_{i}{j}", real=True))
    mu = sp.Symbol("mu", real=True)
    T1 = sp.Matrix([[1, 0], [0, 0], [0, 1], [0, 0]])
    image = G1 * sp.diag(1, 1, 0, 1) * T1 * G2 * sp.diag(1, 1) * sp.Matrix([1, 0]) * sp.Matrix([mu])
    return Equal(image[0], mu * G2[0, 0] * G1[0, 0],
                 why="switch a1[2] = 0 kills the path through unit 1: only the active path contributes")


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
    derivation=Derivation(
        scope=up_to(2),
        steps=[
            *_path_sum_explicit(),
            _active_only_explicit(),
        ],
    ),
    mutants=[
        Mutant("inactive_paths_count", "the sum runs over every placed path, switches ignored",
               _paths_claim(lambda on, placed: placed)),
        Mutant("translations_ignored", "the sum runs over every path with its switches on, whatever the translation",
               _paths_claim(lambda on, placed: on)),
        Mutant("template_dropped", "path weights omit the top template mu",
               _paths_claim(lambda on, placed: on & placed, template=lambda x: xp.ones_like(x["mu"]))),
    ],
)
