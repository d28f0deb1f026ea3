"""One layer of the Deep Rendering Mixture Model is one convnet layer (Patel et al.).

Max-sum inference over the latent variables of a single rendering layer gives the convnet's
operations: max over binary switches gives ReLU (P1), max over independent local translations
gives max-pooling (P2), and both together give one convolution + ReLU + max-pool layer (P3).
"Push the max to the right": the objective is a sum of independent terms, so the max of the
sum is the sum of the maxima, each of which is a two-case split.

Sources: A. B. Patel, Stats 385 lecture (2017), slides "Exercise: Solve this optimization" and
"Max-Sum Inference in the Shallow Rendering Model"; Patel, Nguyen, Baraniuk, "A probabilistic
framework for deep learning" (NIPS 2016). Statements are this project's formalisation
(formalisations P1-P3); the lecture gives P1 verbatim.
"""

from __future__ import annotations

import functools
import itertools

import numpy as np
import sympy as sp
from hypothesis import strategies as st

from theorems.sources import PATEL
from verify import (
    ALL_SIZES,
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
    xp,
)

CONVENTIONS = (
    "Switch indicator [t > 0] is 0 at t = 0 (a tie leaves the switch off; the value is the same "
    "either way); sgn(0) = 0; ReLU(0) = 0. Ties in a max take the first maximiser; only values are "
    "compared, never which maximiser was chosen."
)
SOURCE = PATEL.with_conventions(CONVENTIONS)

# Rounding: each side is a sum of at most 12 products taken in a different order, so
# |error| <= 2 * 12 * eps * (sum of |products|) ~ 5.3e-15 * scale. rtol = 1e-13 leaves a 20x
# margin; atol = 0 because every term that can cancel is counted in the scale.
SUM_TOLERANCE = Tolerance(
    atol=0.0, rtol=1e-13,
    reason="both sides sum <= 12 products in different orders: error <= 24 eps * scale ~ 5e-15 * scale; 20x margin",
)


# ----------------------------------------------------------------------------- brute force


@functools.lru_cache(maxsize=None)
def binary_vectors(n: int) -> np.ndarray:
    """All of {0,1}^n as rows (2^n x n)."""
    return np.array(list(itertools.product([0, 1], repeat=n)), dtype=np.int64).reshape(-1, n)


@functools.lru_cache(maxsize=None)
def window_positions(K: int, P: int, stride: int) -> np.ndarray:
    """Every independent choice of translations t in {0..P-1}^K, as the positions
    stride*j + t_j they select (P^K x K)."""
    offsets = np.array(list(itertools.product(range(P), repeat=K)), dtype=np.int64).reshape(-1, K)
    return stride * np.arange(K) + offsets


@functools.lru_cache(maxsize=None)
def placements(K: int, P: int) -> np.ndarray:
    """T_t as 0/1 matrices: placements[c] (KP x K) puts z_j at position P*j + t_j."""
    pos = window_positions(K, P, P)
    out = np.zeros((len(pos), K * P, K), dtype=np.int64)
    for c, row in enumerate(pos):
        out[c, row, np.arange(K)] = 1
    return out


def windows(v, K: int, P: int, stride: int):
    """The K pooling windows of v as a K x P array (window j starts at stride*j)."""
    return v[stride * np.arange(K)[:, None] + np.arange(P)[None, :]]


def _stride(s) -> int:
    return max(1, s.P - s.overlap)


# ----------------------------------------------------------------------------- P1: switches


def switch_instance(rng, s):
    return {"z": rng.reals(s.D), "u": rng.reals(s.D)}


def switch_max(z, u):
    """max over a in {0,1}^D of z^T diag(a) u, by enumerating all 2^D switch settings."""
    return xp.max(xp.asarray(binary_vectors(z.shape[0])) @ (z * u))


def switch_relu_property(s, x):
    z, u = x["z"], x["u"]
    c = z * u
    scale = xp.sum(xp.abs(c))
    best = switch_max(z, u)
    # [z_i u_i > 0] from the signs: the float64 product z_i u_i can underflow to 0 for tiny
    # z_i, u_i > 0 (Hypothesis found z = u = 4e-166), while the signs decide it exactly.
    a_hat = xp.heaviside(xp.sign(z) * xp.sign(u))
    return {
        "value": residual(best, xp.sum(xp.relu(c)), scale),
        "argmax": residual(xp.sum(a_hat * c), best, scale),
        "sign_form": residual(a_hat * u, xp.sign(z) * xp.relu(xp.sign(z) * u), xp.abs(u)),
    }


_c, _z, _u = sp.symbols("c z u", real=True)
_a, _zi, _ui = sp.IndexedBase("a"), sp.IndexedBase("z"), sp.IndexedBase("u")
_i, _j = sp.symbols("i j", integer=True)


def _switch_explicit(D: int) -> Cases:
    c = sp.symbols(f"c1:{D + 1}", real=True)
    lhs = sp.Max(*[sum(ai * ci for ai, ci in zip(a, c)) for a in itertools.product([0, 1], repeat=D)])
    return Cases(lhs, sum(sp.Max(ci, 0) for ci in c), c, f"cross-check: D = {D} with all 2^{D} switch settings")


switch_relu = Theorem(
    id="patel2016.switch-relu",
    title="Max over binary switches is ReLU",
    source=SOURCE.at("lecture exercise 'max_a z^T M_a u' (value, maximiser and sign form)", verbatim=True, formalisation="p1"),
    statement=(
        r"For all $z, u \in \mathbb{R}^D$: $\max_{a \in \{0,1\}^D} z^\top \operatorname{diag}(a)\, u "
        r"= \mathbf{1}^\top \operatorname{ReLU}(z \odot u)$, attained at $\hat a = [z \odot u > 0]$, and "
        r"$\hat a \odot u = \operatorname{sgn}(z) \odot \operatorname{ReLU}(\operatorname{sgn}(z) \odot u)$."
    ),
    property=switch_relu_property,
    structure=st.fixed_dictionaries({"D": st.integers(1, 10)}),
    sample=switch_instance,
    tolerance=SUM_TOLERANCE,
    derivation=Derivation(
        scope=ALL_SIZES,
        steps=[
            Separable(_zi[_i] * _a[_i] * _ui[_i], optimise=[_a], index=_i,
                      why="z^T diag(a) u = sum_i a_i z_i u_i: term i depends on a_i only, so the max over "
                          "{0,1}^D is the sum of D one-switch maxima"),
            Cases(sp.Max(0 * _c, 1 * _c), sp.Max(_c, 0), [_c],
                  why="two-case split: max over a_i in {0,1} of a_i c_i is ReLU(c_i)"),
            Cases(sp.Piecewise((1, _c > 0), (0, True)) * _c, sp.Max(_c, 0), [_c],
                  why="the switch a_i = [c_i > 0] attains ReLU(c_i)"),
            Cases(sp.Piecewise((1, _z * _u > 0), (0, True)) * _u, sp.sign(_z) * sp.Max(sp.sign(_z) * _u, 0),
                  [_z, _u], why="sign form: [z u > 0] u = sgn(z) ReLU(sgn(z) u)"),
            *[_switch_explicit(D) for D in (1, 2, 3)],
        ],
    ),
    mutants=[
        Mutant("abs_not_relu", "max equals 1^T |z o u| (ReLU replaced by |.|)",
               lambda s, x: residual(switch_max(x["z"], x["u"]), xp.sum(xp.abs(x["z"] * x["u"])),
                                     xp.sum(xp.abs(x["z"] * x["u"]))),
               derivation=Derivation([Cases(sp.Max(0, _c), sp.Abs(_c), [_c], why="max(0, c) = |c|")])),
        Mutant("relu_outside_sum", "max equals ReLU(z^T u) (ReLU of the sum, not sum of ReLUs)",
               lambda s, x: residual(switch_max(x["z"], x["u"]), xp.relu(xp.sum(x["z"] * x["u"])),
                                     xp.sum(xp.abs(x["z"] * x["u"])))),
        Mutant("argmax_ignores_z", "the maximiser is [u > 0] for every z (true only for z > 0)",
               lambda s, x: residual(xp.sum(xp.heaviside(x["u"]) * x["z"] * x["u"]), switch_max(x["z"], x["u"]),
                                     xp.sum(xp.abs(x["z"] * x["u"])))),
        Mutant("sign_form_drops_outer_sign", "a_hat o u = ReLU(sgn(z) o u)",
               lambda s, x: residual(xp.heaviside(x["z"] * x["u"]) * x["u"],
                                     xp.relu(xp.sign(x["z"]) * x["u"]), xp.abs(x["u"]))),
    ],
)


def positive_z_instance(rng, s):
    return {"z": rng.maybe_abs(rng.reals(s.D)), "u": rng.reals(s.D)}


def _maximiser_property(choose):
    def prop(s, x):
        z, u = x["z"], x["u"]
        return residual(xp.sum(choose(z, u) * z * u), switch_max(z, u), xp.sum(xp.abs(z * u)))

    return prop


switch_relu_positive_z = Theorem(
    id="patel2016.switch-relu.positive-z",
    title="For positive z the best switches are [u > 0], whatever z is",
    source=SOURCE.at("lecture exercise part (b) 'What if z is nonnegative?'", formalisation="p1"),
    statement=r"If $z > 0$ then $\hat a = [u > 0]$ maximises $z^\top \operatorname{diag}(a)\, u$ over $a \in \{0,1\}^D$.",
    property=_maximiser_property(lambda z, u: xp.heaviside(u)),
    structure=st.fixed_dictionaries({"D": st.integers(1, 10)}),
    sample=positive_z_instance,
    tolerance=SUM_TOLERANCE,
    assumptions=[Assumption("z_positive", "every entry of z is > 0", lambda s, x: xp.all(x["z"] > 0))],
    uses=["patel2016.switch-relu"],
    derivation=Derivation(
        scope=ALL_SIZES,
        steps=[
            Separable(_zi[_i] * _a[_i] * _ui[_i], optimise=[_a], index=_i,
                      why="the objective separates over the switches (as in patel2016.switch-relu)"),
            Cases(sp.Piecewise((1, _u > 0), (0, True)) * sp.Symbol("zp", positive=True) * _u,
                  sp.Max(sp.Symbol("zp", positive=True) * _u, 0), [sp.Symbol("zp", positive=True), _u],
                  why="for z_i > 0 the switch [u_i > 0] attains ReLU(z_i u_i)"),
        ],
    ),
    mutants=[
        Mutant("maximiser_u_negative", "the maximiser is [u < 0]",
               _maximiser_property(lambda z, u: xp.heaviside(-u))),
        Mutant("maximiser_all_on", "all switches on (a = 1) is optimal",
               _maximiser_property(lambda z, u: xp.ones_like(u))),
        Mutant("value_drops_z", "the max equals 1^T ReLU(u) (z dropped from the value)",
               lambda s, x: residual(switch_max(x["z"], x["u"]), xp.sum(xp.relu(x["u"])),
                                     xp.sum(xp.abs(x["z"] * x["u"])) + xp.sum(xp.abs(x["u"])))),
    ],
)


# ----------------------------------------------------------------------------- P2: translations

POOL_STRUCTURE = st.fixed_dictionaries({"K": st.integers(1, 4), "P": st.integers(1, 4), "overlap": st.integers(0, 1)})


def pool_instance(rng, s):
    n = _stride(s) * (s.K - 1) + s.P
    return {"z": rng.maybe_abs(rng.reals(s.K)), "v": rng.reals(n)}


def translation_max(z, v, K, P, stride):
    """max over independent t in {0..P-1}^K of <T_t z, v> = sum_j z_j v[stride*j + t_j], by enumeration."""
    return xp.max(xp.sum(z[None, :] * v[window_positions(K, P, stride)], axis=1))


def _pool_scale(z, v, s):
    return xp.sum(xp.abs(z)) * xp.max(xp.abs(v))


def _pool_claim(pool):
    """Property: max over translations equals sum_j z_j pool(window_j), for a pooling rule."""

    def prop(s, x):
        z, v = x["z"], x["v"]
        lhs = translation_max(z, v, s.K, s.P, _stride(s))
        rhs = xp.sum(z * pool(z, windows(v, s.K, s.P, _stride(s))))
        return residual(lhs, rhs, _pool_scale(z, v, s))

    return prop


NON_OVERLAPPING = Assumption(
    "non_overlapping", "pooling windows do not overlap (stride = window size)", lambda s, x: xp.asarray(s.overlap == 0 or s.P == 1)
)
Z_NONNEG = Assumption("z_nonneg", "every entry of z is >= 0", lambda s, x: xp.all(x["z"] >= 0))

_v, _zw = sp.IndexedBase("v"), sp.Symbol("zeta", nonnegative=True)
_t = sp.IndexedBase("t")
_w, _w0, _w1 = sp.symbols("w w0 w1", real=True)

translation_maxpool = Theorem(
    id="patel2016.translation-maxpool",
    title="Max over independent local translations is max-pooling",
    source=SOURCE.at("'Max-marginalizing over g => Max-pooling'", formalisation="p2"),
    statement=(
        r"For $z \ge 0$ and independent translations $t_j \in \{0,\dots,P-1\}$ over non-overlapping windows: "
        r"$\max_t \langle T_t z, v\rangle = \sum_j z_j \max_{\tau} v_{Pj+\tau} = z^\top \operatorname{MaxPool}(v)$."
    ),
    property=_pool_claim(lambda z, w: xp.max(w, axis=1)),
    structure=POOL_STRUCTURE,
    sample=pool_instance,
    tolerance=SUM_TOLERANCE,
    assumptions=[Z_NONNEG, NON_OVERLAPPING],
    derivation=Derivation(
        scope=ALL_SIZES,
        steps=[
            Separable(_zi[_j] * _v[_j, _t[_j]], optimise=[_t], index=_j,
                      why="<T_t z, v> = sum_j z_j v[j, t_j]: term j depends on t_j only"),
            Monotone(_zw * _w, _w, why="for z_j >= 0, w -> z_j w is non-decreasing, so max_tau z_j v = z_j max_tau v"),
            Cases(sp.Max(_zw * _w0, _zw * _w1), _zw * sp.Max(_w0, _w1), [_zw, _w0, _w1],
                  why="cross-check: a window of two"),
        ],
    ),
    mutants=[
        Mutant("mean_pool", "max over translations equals z^T AvgPool(v)", _pool_claim(lambda z, w: xp.mean(w, axis=1))),
        Mutant("min_pool", "max over translations equals z^T MinPool(v)", _pool_claim(lambda z, w: xp.min(w, axis=1))),
        Mutant("sum_pool", "max over translations equals z^T SumPool(v)", _pool_claim(lambda z, w: xp.sum(w, axis=1))),
        Mutant("last_position", "max over translations equals sum_j z_j v at the window's last position",
               _pool_claim(lambda z, w: w[:, -1])),
    ],
)


def _signed_pool(z, w):
    return xp.where(z >= 0, xp.max(w, axis=1), xp.min(w, axis=1))


_zneg = sp.Symbol("zeta_neg", nonpositive=True)

translation_maxpool_signed = Theorem(
    id="patel2016.translation-maxpool.signed",
    title="Max over local translations with signed weights: max-pool or min-pool per window",
    source=SOURCE.at("max-pooling, '(min for negative z_j)'", formalisation="p2"),
    statement=(
        r"For all $z$: $\max_t \langle T_t z, v\rangle = \sum_j z_j \,\mathrm{pool}_j(v)$ where "
        r"$\mathrm{pool}_j = \max_\tau v_{Pj+\tau}$ if $z_j \ge 0$ and $\min_\tau v_{Pj+\tau}$ if $z_j < 0$."
    ),
    property=_pool_claim(_signed_pool),
    structure=POOL_STRUCTURE,
    sample=pool_instance,
    tolerance=SUM_TOLERANCE,
    assumptions=[NON_OVERLAPPING],
    uses=["patel2016.translation-maxpool"],
    derivation=Derivation(
        scope=ALL_SIZES,
        steps=[
            Separable(_zi[_j] * _v[_j, _t[_j]], optimise=[_t], index=_j, why="term j depends on t_j only"),
            Monotone(_zw * _w, _w, why="z_j >= 0: w -> z_j w is non-decreasing, so the max stays a max"),
            Monotone(_zneg * _w, _w, direction="decreasing",
                     why="z_j <= 0: w -> z_j w is non-increasing, so max_tau z_j v = z_j min_tau v"),
        ],
    ),
    mutants=[
        Mutant("always_max", "max-pool in every window whatever the sign of z_j",
               _pool_claim(lambda z, w: xp.max(w, axis=1))),
        Mutant("abs_weights", "sum_j |z_j| max_tau v (signs dropped)",
               lambda s, x: residual(translation_max(x["z"], x["v"], s.K, s.P, _stride(s)),
                                     xp.sum(xp.abs(x["z"]) * xp.max(windows(x["v"], s.K, s.P, _stride(s)), axis=1)),
                                     _pool_scale(x["z"], x["v"], s))),
        Mutant("min_max_swapped", "min-pool for z_j >= 0 and max-pool for z_j < 0",
               _pool_claim(lambda z, w: xp.where(z >= 0, xp.min(w, axis=1), xp.max(w, axis=1)))),
    ],
)


def _global_shift_property(s, x):
    z, v = x["z"], x["v"]
    stride = _stride(s)
    shared = xp.max(xp.stack([xp.sum(z * v[stride * np.arange(s.K) + t]) for t in range(s.P)]))
    return residual(shared, xp.sum(z * xp.max(windows(v, s.K, s.P, stride), axis=1)), _pool_scale(z, v, s))


_v1, _v2, _v3, _v4 = sp.symbols("v1:5", real=True)
_z1, _z2 = sp.symbols("z1 z2", nonnegative=True)

global_shift_maxpool = Theorem(
    id="patel2016.global-shift-maxpool",
    title="A single shared global shift does NOT give max-pooling (stated non-theorem)",
    source=SOURCE.at("'a single shared global shift does not give max-pooling' (stated non-theorem)", formalisation="p2"),
    statement=(
        r"(false) For $z \ge 0$: $\max_{t \in \{0..P-1\}} \sum_j z_j v_{Pj+t} = \sum_j z_j \max_\tau v_{Pj+\tau}$ "
        r"when one shift $t$ is shared by all windows."
    ),
    property=_global_shift_property,
    structure=POOL_STRUCTURE,
    sample=pool_instance,
    tolerance=SUM_TOLERANCE,
    assumptions=[Z_NONNEG, NON_OVERLAPPING],
    expect="false",
    uses=["patel2016.translation-maxpool"],
    derivation=Derivation(
        scope=ALL_SIZES,
        steps=[
            Equal(sp.Max(_z1 * _v1 + _z2 * _v3, _z1 * _v2 + _z2 * _v4), _z1 * sp.Max(_v1, _v2) + _z2 * sp.Max(_v3, _v4),
                  why="two windows of two, one shared shift: max over t of z1 v[t] + z2 v[2+t]"),
        ],
    ),
)


def _pool_of(f, pool):
    def prop(s, x):
        v = x["v"]
        w = windows(v, s.K, s.P, _stride(s))
        return residual(pool(f(w)), f(pool(w)), xp.max(xp.abs(v)))

    return prop


def _maxpool(w):
    return xp.max(w, axis=1)


maxpool_relu_commute = Theorem(
    id="patel2016.maxpool-relu-commute",
    title="MaxPool and ReLU commute",
    source=SOURCE.at("'MaxPool(ReLU(v)) = ReLU(MaxPool(v))'", formalisation="p2"),
    statement=r"$\operatorname{MaxPool}(\operatorname{ReLU}(v)) = \operatorname{ReLU}(\operatorname{MaxPool}(v))$ for every window layout.",
    property=_pool_of(xp.relu, _maxpool),
    structure=POOL_STRUCTURE,
    sample=pool_instance,
    tolerance=Tolerance(0.0, 0.0, "max and ReLU only select entries: both sides are entries of v or 0, exactly"),
    derivation=Derivation(
        scope=ALL_SIZES,
        steps=[
            Monotone(sp.Max(_w, 0), _w, why="ReLU is non-decreasing, so it commutes with the max over any window"),
            Equal(sp.Max(sp.Max(_w0, 0), sp.Max(_w1, 0)), sp.Max(sp.Max(_w0, _w1), 0), why="cross-check: a window of two"),
        ],
    ),
    mutants=[
        Mutant("avg_pool", "AvgPool and ReLU commute", _pool_of(xp.relu, lambda w: xp.mean(w, axis=1))),
        Mutant("abs_for_relu", "MaxPool and |.| commute (|.| is not monotone)", _pool_of(xp.abs, _maxpool)),
        Mutant("min_pool", "MinPool(ReLU(v)) = ReLU(MaxPool(v))",
               lambda s, x: residual(xp.min(xp.relu(windows(x["v"], s.K, s.P, _stride(s))), axis=1),
                                     xp.relu(xp.max(windows(x["v"], s.K, s.P, _stride(s)), axis=1)),
                                     xp.max(xp.abs(x["v"])))),
    ],
)


# ----------------------------------------------------------------------------- P3: a rendering layer

# (K windows, P positions per window): brute force enumerates 2^(K P) switch settings times
# P^K translations, at most 576 here.
LAYER_SHAPES = [(1, 1), (1, 2), (1, 3), (2, 1), (2, 2), (2, 3), (3, 1), (3, 2)]
LAYER_STRUCTURE = st.fixed_dictionaries({"KP": st.sampled_from(LAYER_SHAPES), "D": st.integers(1, 4)})


def layer_instance(rng, s):
    K, P = s.KP
    return {"Gamma": rng.reals((s.D, K * P)), "I": rng.reals(s.D), "z": rng.maybe_abs(rng.reals(K))}


def render_max(Gamma, I, z, K, P):
    """max over switches a and translations t of <Gamma M_a T_t z, I>, rendering every image."""
    coeff = xp.asarray(binary_vectors(K * P))[:, None, :] * (xp.asarray(placements(K, P)) @ z)[None, :, :]
    images = coeff @ Gamma.T  # (2^(KP), P^K, D): every rendered image
    return xp.max(images @ I)


def _layer_claim(rhs_of):
    def prop(s, x):
        K, P = s.KP
        Gamma, I, z = x["Gamma"], x["I"], x["z"]
        u = windows(Gamma.T @ I, K, P, P)
        scale = xp.sum(xp.abs(z)) * xp.max(xp.abs(Gamma).T @ xp.abs(I))
        return residual(render_max(Gamma, I, z, K, P), rhs_of(z, u), scale)

    return prop


def _convnet_layer(z, u):
    return z @ xp.max(xp.relu(u), axis=1)


def _signed_layer(z, u):
    sgn = xp.sign(z)
    return xp.abs(z) @ xp.max(xp.relu(sgn[:, None] * u), axis=1)


_u0, _u1 = sp.symbols("u0 u1", real=True)


def _layer_explicit(zsym, rhs) -> Cases:
    """K = 1 window of P = 2: every (a, t) rendered explicitly."""
    lhs = sp.Max(*[a[t] * zsym * (_u0, _u1)[t] for a in itertools.product([0, 1], repeat=2) for t in (0, 1)])
    return Cases(lhs, rhs, [zsym, _u0, _u1], why="cross-check: K = 1, P = 2, all 8 latent configurations")


render_layer = Theorem(
    id="patel2016.render-layer-convnet",
    title="Max-sum inference in one rendering layer is one convnet layer",
    source=SOURCE.at("'Max-Sum Inference in the Shallow Rendering Model => one Convnet layer'", formalisation="p3"),
    statement=(
        r"For $z \ge 0$, dictionary $\Gamma \in \mathbb{R}^{D \times KP}$ and image $I \in \mathbb{R}^D$: "
        r"$\max_{a, t} \langle \Gamma M_a T_t z, I\rangle = z^\top \operatorname{MaxPool}(\operatorname{ReLU}(\Gamma^\top I))$, "
        r"with switches $a \in \{0,1\}^{KP}$ and independent translations $t \in \{0..P-1\}^K$ over K non-overlapping windows."
    ),
    property=_layer_claim(_convnet_layer),
    structure=LAYER_STRUCTURE,
    sample=layer_instance,
    tolerance=SUM_TOLERANCE,
    assumptions=[Z_NONNEG],
    uses=["patel2016.switch-relu", "patel2016.translation-maxpool", "patel2016.maxpool-relu-commute"],
    derivation=Derivation(
        scope=ALL_SIZES,
        steps=[
            Separable(_zi[_j] * _a[_j, _t[_j]] * _ui[_j, _t[_j]], optimise=[_a, _t], index=_j,
                      why="<Gamma M_a T_t z, I> = sum_j z_j a[j, t_j] u[j, t_j] with u = Gamma^T I in windows: "
                          "term j reads only window j's switches and translation"),
            Cases(sp.Max(0 * _c, 1 * _c), sp.Max(_c, 0), [_c], why="max over one switch is ReLU (switch-relu)"),
            Cases(sp.Max(_zw * _w, 0), _zw * sp.Max(_w, 0), [_zw, _w], why="ReLU(z_j w) = z_j ReLU(w) for z_j >= 0"),
            Monotone(_zw * _w, _w, why="w -> z_j w is non-decreasing: max_tau z_j ReLU(u) = z_j max_tau ReLU(u)"),
            _layer_explicit(_zw, _zw * sp.Max(sp.Max(_u0, 0), sp.Max(_u1, 0))),
        ],
    ),
    mutants=[
        Mutant("no_relu", "the layer is z^T MaxPool(Gamma^T I) (ReLU dropped)",
               _layer_claim(lambda z, u: z @ xp.max(u, axis=1))),
        Mutant("avg_pool", "the layer is z^T AvgPool(ReLU(Gamma^T I))",
               _layer_claim(lambda z, u: z @ xp.mean(xp.relu(u), axis=1))),
        Mutant("relu_outside", "the layer is ReLU(z^T MaxPool(Gamma^T I))",
               _layer_claim(lambda z, u: xp.relu(z @ xp.max(u, axis=1)))),
        Mutant("sum_pool", "the layer is z^T SumPool(ReLU(Gamma^T I))",
               _layer_claim(lambda z, u: z @ xp.sum(xp.relu(u), axis=1))),
    ],
)

_zs = sp.Symbol("z", real=True)

render_layer_signed = Theorem(
    id="patel2016.render-layer-convnet.signed",
    title="One rendering layer with signed z: ReLU with sign-flipped inputs",
    source=SOURCE.at("lecture 'a o u = sgn(z) o ReLU(sgn(z) o u)' and the signed E-step", formalisation="p3"),
    statement=(
        r"For all $z \in \mathbb{R}^K$ with $s = \operatorname{sgn}(z)$: $\max_{a, t} \langle \Gamma M_a T_t z, I\rangle = "
        r"\sum_j |z_j| \max_\tau \operatorname{ReLU}(s_j (\Gamma^\top I)_{j,\tau})$."
    ),
    property=_layer_claim(_signed_layer),
    structure=LAYER_STRUCTURE,
    sample=layer_instance,
    tolerance=SUM_TOLERANCE,
    uses=["patel2016.switch-relu", "patel2016.translation-maxpool"],
    derivation=Derivation(
        scope=ALL_SIZES,
        steps=[
            Separable(_zi[_j] * _a[_j, _t[_j]] * _ui[_j, _t[_j]], optimise=[_a, _t], index=_j,
                      why="term j reads only window j's switches and translation"),
            Cases(sp.Max(0 * _c, 1 * _c), sp.Max(_c, 0), [_c], why="max over one switch is ReLU (switch-relu)"),
            Cases(sp.Max(_zs * _w, 0), sp.Abs(_zs) * sp.Max(sp.sign(_zs) * _w, 0), [_zs, _w],
                  why="ReLU(z w) = |z| ReLU(sgn(z) w) for every real z"),
            Monotone(sp.Abs(_zs) * _w, _w, why="w -> |z_j| w is non-decreasing, so |z_j| leaves the max"),
            _layer_explicit(_zs, sp.Abs(_zs) * sp.Max(sp.Max(sp.sign(_zs) * _u0, 0), sp.Max(sp.sign(_zs) * _u1, 0))),
        ],
    ),
    mutants=[
        Mutant("plain_form_for_signed_z", "z^T MaxPool(ReLU(Gamma^T I)) for signed z", _layer_claim(_convnet_layer)),
        Mutant("sign_dropped_inside", "sum_j |z_j| max_tau ReLU(u_j,tau) (sign not applied inside the ReLU)",
               _layer_claim(lambda z, u: xp.abs(z) @ xp.max(xp.relu(u), axis=1))),
        Mutant("sign_outside", "sum_j z_j max_tau ReLU(s_j u_j,tau) (signed weights outside)",
               _layer_claim(lambda z, u: z @ xp.max(xp.relu(xp.sign(z)[:, None] * u), axis=1))),
    ],
)
