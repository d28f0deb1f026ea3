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
    Algebra, Assumption, Cases, Claim, Derivation, Fact, Lemma, MaxOver, MaxSum, MinOver, Monotone, Mutant, Theorem,
    Tolerance, Unfold, backwards, eq, residual, xp,
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


# --- P1 symbolically, for every D: the instance's arrays z, u and the structure's D, by name

_a = sp.IndexedBase("a")  # the switches (optimised)
_z, _u = sp.IndexedBase("z", real=True), sp.IndexedBase("u", real=True)
_zpos = sp.IndexedBase("z", positive=True)
_i, _j = sp.symbols("i j", integer=True)
_D = sp.Symbol("D", integer=True, positive=True)
_c = sp.Symbol("c", real=True)


def _on(cond):
    """The indicator [cond] as SymPy writes it."""
    return sp.Piecewise((1, cond), (0, True))


def _switch_objective(z, u):
    """max over a in {0,1}^D of z^T diag(a) u = sum_i a_i z_i u_i."""
    return MaxOver(sp.Sum(_a[_i] * z[_i] * u[_i], (_i, 0, _D - 1)), (_a, [0, 1]))


def _push_max(z, u):
    """The two links every switch claim shares: the max separates over the switches, and one switch
    takes the values 0 and 1."""
    return [
        eq(sp.Sum(MaxOver(_a[_i] * z[_i] * u[_i], (_a, [0, 1])), (_i, 0, _D - 1)),
           MaxSum("z^T diag(a) u = sum_i a_i z_i u_i: term i reads only the switch a_i")),
        eq(sp.Sum(sp.Max(0, z[_i] * u[_i]), (_i, 0, _D - 1)), Unfold("one switch: max(0 * z_i u_i, 1 * z_i u_i)")),
    ]


_SWITCH_VALUE = Derivation(
    component="value",
    claim=Claim(_switch_objective(_z, _u), "==", sp.Sum(sp.Max(_z[_i] * _u[_i], 0), (_i, 0, _D - 1))),
    chain=[*_push_max(_z, _u), eq(sp.Sum(sp.Max(_z[_i] * _u[_i], 0), (_i, 0, _D - 1)), Algebra("ReLU(c) = max(c, 0)"))],
)

_SWITCH_ARGMAX = Derivation(
    component="argmax",
    claim=Claim(sp.Sum(_on(_z[_i] * _u[_i] > 0) * _z[_i] * _u[_i], (_i, 0, _D - 1)), "==", _switch_objective(_z, _u)),
    chain=[
        eq(sp.Sum(sp.Max(0, _z[_i] * _u[_i]), (_i, 0, _D - 1)),
           Cases([_z[_i], _u[_i]], "the switch [z_i u_i > 0] passes z_i u_i exactly when it is positive")),
        *backwards(_push_max(_z, _u), _switch_objective(_z, _u)),
    ],
)

_SWITCH_SIGN_FORM = Derivation(
    component="sign_form",
    entries=(_i, 0, _D - 1),
    claim=Claim(_on(_z[_i] * _u[_i] > 0) * _u[_i], "==", sp.sign(_z[_i]) * sp.Max(sp.sign(_z[_i]) * _u[_i], 0)),
    chain=[eq(sp.sign(_z[_i]) * sp.Max(sp.sign(_z[_i]) * _u[_i], 0), Cases([_z[_i], _u[_i]], "the signs of z_i and u_i"))],
)


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
    derivation=[_SWITCH_VALUE, _SWITCH_ARGMAX, _SWITCH_SIGN_FORM],
    mutants=[
        Mutant("abs_not_relu", "max equals 1^T |z o u| (ReLU replaced by |.|)",
               lambda s, x: residual(switch_max(x["z"], x["u"]), xp.sum(xp.abs(x["z"] * x["u"])),
                                     xp.sum(xp.abs(x["z"] * x["u"]))),
               derivation=Derivation(component="value", claim=Claim(
                   _switch_objective(_z, _u), "==", sp.Sum(sp.Abs(_z[_i] * _u[_i]), (_i, 0, _D - 1))))),
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
        claim=Claim(sp.Sum(_on(_u[_i] > 0) * _zpos[_i] * _u[_i], (_i, 0, _D - 1)), "==", _switch_objective(_zpos, _u)),
        chain=[
            eq(sp.Sum(sp.Max(0, _zpos[_i] * _u[_i]), (_i, 0, _D - 1)),
               Cases([_zpos[_i], _u[_i]], "for z_i > 0, [u_i > 0] z_i u_i = max(0, z_i u_i)")),
            *backwards(_push_max(_zpos, _u), _switch_objective(_zpos, _u)),
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

# --- P2 symbolically, for every K, P and stride S (S = P: windows side by side; S < P: overlapping)

_v = sp.IndexedBase("v", real=True)
_zn = sp.IndexedBase("z", nonnegative=True)
_t = sp.IndexedBase("t")  # the translations (optimised), one per window
_K, _P, _S = sp.symbols("K P S", integer=True, positive=True)
_tau = sp.Symbol("tau", integer=True)
_POOL_BIND = {"S": _stride}  # the stride is the structure's: max(1, P - overlap)


def _window_max(v, op=MaxOver):
    """max_tau v[S j + tau] over window j (op=MinOver: the min)."""
    return op(v[_S * _j + _tau], (_tau, 0, _P - 1))


def _translations(z):
    """max over independent t_j in {0..P-1} of <T_t z, v> = sum_j z_j v[S j + t_j]."""
    return MaxOver(sp.Sum(z[_j] * _v[_S * _j + _t[_j]], (_j, 0, _K - 1)), (_t, 0, _P - 1))


def _separate_translations(z):
    return [
        eq(sp.Sum(MaxOver(z[_j] * _v[_S * _j + _t[_j]], (_t, 0, _P - 1)), (_j, 0, _K - 1)),
           MaxSum("term j reads only its own translation t_j (the windows may overlap: v is not optimised)")),
        eq(sp.Sum(MaxOver(z[_j] * _v[_S * _j + _tau], (_tau, 0, _P - 1)), (_j, 0, _K - 1)),
           Unfold("t_j is read at one entry only: one variable tau")),
    ]


translation_maxpool = Theorem(
    id="patel2016.translation-maxpool",
    title="Max over independent local translations is max-pooling",
    source=SOURCE.at("'Max-marginalizing over g => Max-pooling'", formalisation="p2"),
    statement=(
        r"For $z \ge 0$ and independent translations $t_j \in \{0,\dots,P-1\}$, one per pooling window of $P$ "
        r"positions starting every $S \ge 1$ positions (side by side for $S = P$, overlapping for $S < P$): "
        r"$\max_t \langle T_t z, v\rangle = \sum_j z_j \max_{\tau} v_{Sj+\tau} = z^\top \operatorname{MaxPool}(v)$."
    ),
    property=_pool_claim(lambda z, w: xp.max(w, axis=1)),
    structure=POOL_STRUCTURE,
    sample=pool_instance,
    tolerance=SUM_TOLERANCE,
    assumptions=[Z_NONNEG],
    derivation=Derivation(
        bind=_POOL_BIND,
        claim=Claim(_translations(_zn), "==", sp.Sum(_zn[_j] * _window_max(_v), (_j, 0, _K - 1))),
        chain=[
            *_separate_translations(_zn),
            eq(sp.Sum(_zn[_j] * _window_max(_v), (_j, 0, _K - 1)),
               Monotone(lambda w: _zn[_j] * w, "z_j >= 0: w -> z_j w is non-decreasing")),
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


translation_maxpool_signed = Theorem(
    id="patel2016.translation-maxpool.signed",
    title="Max over local translations with signed weights: max-pool or min-pool per window",
    source=SOURCE.at("max-pooling, '(min for negative z_j)'", formalisation="p2"),
    statement=(
        r"For all $z$ and windows of $P$ positions starting every $S \ge 1$ positions: "
        r"$\max_t \langle T_t z, v\rangle = \sum_j z_j \,\mathrm{pool}_j(v)$ where "
        r"$\mathrm{pool}_j = \max_\tau v_{Sj+\tau}$ if $z_j \ge 0$ and $\min_\tau v_{Sj+\tau}$ if $z_j < 0$."
    ),
    property=_pool_claim(_signed_pool),
    structure=POOL_STRUCTURE,
    sample=pool_instance,
    tolerance=SUM_TOLERANCE,
    uses=["patel2016.translation-maxpool"],
    derivation=Derivation(
        bind=_POOL_BIND,
        claim=Claim(_translations(_z), "==", sp.Sum(sp.Piecewise((_z[_j] * _window_max(_v), _z[_j] >= 0),
                                      (_z[_j] * _window_max(_v, MinOver), True)), (_j, 0, _K - 1))),
        chain=[
            *_separate_translations(_z),
            eq(sp.Sum(sp.Piecewise((_z[_j] * _window_max(_v), _z[_j] >= 0),
                                      (_z[_j] * _window_max(_v, MinOver), True)), (_j, 0, _K - 1)),
               Monotone(lambda w: _z[_j] * w, "w -> z_j w is non-decreasing for z_j >= 0, non-increasing for z_j <= 0",
                        direction="by sign")),
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
    # no chain: a false claim has no proof; the engine looks for an exact rational point where it fails
    derivation=Derivation(
        bind=_POOL_BIND,
        claim=Claim(MaxOver(sp.Sum(_zn[_j] * _v[_S * _j + _tau], (_j, 0, _K - 1)), (_tau, 0, _P - 1)), "==",
                    sp.Sum(_zn[_j] * _window_max(_v), (_j, 0, _K - 1))),
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
        bind=_POOL_BIND,
        entries=(_j, 0, _K - 1),
        claim=Claim(MaxOver(sp.Max(_v[_S * _j + _tau], 0), (_tau, 0, _P - 1)), "==", sp.Max(_window_max(_v), 0)),
        chain=[eq(sp.Max(_window_max(_v), 0),
                  Monotone(lambda w: sp.Max(w, 0), "ReLU is non-decreasing: it commutes with the max over window j"))],
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


# --- P3 symbolically, for every K, P and D: the switches a[j, tau] of window j's P slots (a 2-D
# name for the K P switches: slot tau of window j is position P j + tau), the translations t_j

_Gamma, _I = sp.IndexedBase("Gamma", real=True), sp.IndexedBase("I", real=True)
_d = sp.Symbol("d", integer=True)
_DIM = sp.Symbol("D", integer=True, positive=True)
_LAYER_BIND = {"K": lambda s: s.KP[0], "P": lambda s: s.KP[1]}
_zeta, _w, _cs = sp.Symbol("zeta", nonnegative=True), sp.Symbol("w", real=True), sp.Symbol("c", real=True)


def _filter(j, tau):
    """(Gamma^T I) at slot tau of window j."""
    return sp.Sum(_Gamma[_d, _P * j + tau] * _I[_d], (_d, 0, _DIM - 1))


def _rendering(z):
    """max over switches and translations of <Gamma M_a T_t z, I> = sum_j z_j a[j, t_j] (Gamma^T I)[P j + t_j]."""
    return MaxOver(sp.Sum(z[_j] * _a[_j, _t[_j]] * _filter(_j, _t[_j]), (_j, 0, _K - 1)), (_a, [0, 1]), (_t, 0, _P - 1))


def _layer_chain(z, scale, inside, fact, weight):
    """Push the max in (separate the windows, a slot's switch is a ReLU), take the scale out of the ReLU
    (``fact``, whose symbol ``weight`` stands for z_j), then out of the max over the window (monotone)."""
    relu = sp.Max(0, z[_j] * _filter(_j, _tau))
    return [
        eq(sp.Sum(MaxOver(z[_j] * _a[_j, _t[_j]] * _filter(_j, _t[_j]), (_a, [0, 1]), (_t, 0, _P - 1)), (_j, 0, _K - 1)),
           MaxSum("term j reads only window j's switches a[j, .] and translation t_j")),
        eq(sp.Sum(MaxOver(relu, (_tau, 0, _P - 1)), (_j, 0, _K - 1)),
           Unfold("t_j is one variable tau; the switch at the chosen slot takes the values 0 and 1")),
        eq(sp.Sum(MaxOver(scale * sp.Max(inside * _filter(_j, _tau), 0), (_tau, 0, _P - 1)), (_j, 0, _K - 1)),
           Lemma(fact.name, "in every window and slot", at={weight: z[_j], _w: _filter(_j, _tau)})),
        eq(sp.Sum(scale * MaxOver(sp.Max(inside * _filter(_j, _tau), 0), (_tau, 0, _P - 1)), (_j, 0, _K - 1)),
           Monotone(lambda w: scale * w, "the scale is >= 0: w -> scale w is non-decreasing")),
    ]


_RELU_SCALE = Fact("relu_scale", Claim(sp.Max(_zeta * _w, 0), "==", _zeta * sp.Max(_w, 0)),
                   [eq(_zeta * sp.Max(_w, 0), Cases([_zeta, _w], "ReLU is positively homogeneous"))])
_RELU_SIGN = Fact("relu_sign", Claim(sp.Max(_cs * _w, 0), "==", sp.Abs(_cs) * sp.Max(sp.sign(_cs) * _w, 0)),
                  [eq(sp.Abs(_cs) * sp.Max(sp.sign(_cs) * _w, 0), Cases([_cs, _w], "c = sgn(c) |c|"))])


def _layer_rhs(scale, inside):
    return sp.Sum(scale * MaxOver(sp.Max(inside * _filter(_j, _tau), 0), (_tau, 0, _P - 1)), (_j, 0, _K - 1))


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
        bind=_LAYER_BIND,
        claim=Claim(_rendering(_zn), "==", _layer_rhs(_zn[_j], 1)),
        facts=[_RELU_SCALE],
        chain=_layer_chain(_zn, _zn[_j], 1, _RELU_SCALE, _zeta),
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
        bind=_LAYER_BIND,
        claim=Claim(_rendering(_z), "==", _layer_rhs(sp.Abs(_z[_j]), sp.sign(_z[_j]))),
        facts=[_RELU_SIGN],
        chain=_layer_chain(_z, sp.Abs(_z[_j]), sp.sign(_z[_j]), _RELU_SIGN, _cs),
    ),
    mutants=[
        Mutant("plain_form_for_signed_z", "z^T MaxPool(ReLU(Gamma^T I)) for signed z", _layer_claim(_convnet_layer)),
        Mutant("sign_dropped_inside", "sum_j |z_j| max_tau ReLU(u_j,tau) (sign not applied inside the ReLU)",
               _layer_claim(lambda z, u: xp.abs(z) @ xp.max(xp.relu(u), axis=1))),
        Mutant("sign_outside", "sum_j z_j max_tau ReLU(s_j u_j,tau) (signed weights outside)",
               _layer_claim(lambda z, u: z @ xp.max(xp.relu(xp.sign(z)[:, None] * u), axis=1))),
    ],
)


# --- the signed layer over overlapping windows with shared switches: a stated non-theorem
# (a counterexample exists at K = 3, P = 2, stride 1; the exact solver finds it too). With shared
# switches, two windows that pick the same slot share its switch and add their z_j there, so the
# windows no longer separate and the per-window signed ReLU over-counts.

OVERLAP_STRUCTURE = st.fixed_dictionaries({"K": st.integers(2, 3), "P": st.just(2), "D": st.integers(1, 2)})


def _overlap_slots(s) -> int:
    return (s.K - 1) + s.P  # stride 1


@functools.lru_cache(maxsize=None)
def _overlap_placements(K: int, P: int) -> np.ndarray:
    """placements[c] (K x n): window j's translation t_j puts z_j at slot j + t_j (stride 1)."""
    n = K - 1 + P
    out = np.zeros((P ** K, K, n))
    for c, t in enumerate(itertools.product(range(P), repeat=K)):
        for j, tj in enumerate(t):
            out[c, j, j + tj] = 1.0
    return out


def overlap_instance(rng, s):
    return {"Gamma": rng.reals((s.D, _overlap_slots(s))), "I": rng.reals(s.D), "z": rng.reals(s.K)}


def _overlap_claim(s, x):
    Gamma, I, z = x["Gamma"], x["I"], x["z"]
    u = Gamma.T @ I
    slots = xp.asarray(_overlap_placements(s.K, s.P))  # (P^K, K, n)
    at = xp.sum(slots * z[None, :, None], axis=1)  # (P^K, n): what each translation puts at each slot
    coeff = xp.asarray(binary_vectors(_overlap_slots(s)))[:, None, :] * at[None, :, :]  # shared switches
    lhs = xp.max(coeff @ u)
    rhs = xp.abs(z) @ xp.max(xp.relu(xp.sign(z)[:, None] * windows(u, s.K, s.P, 1)), axis=1)
    return residual(lhs, rhs, xp.sum(xp.abs(z)) * xp.max(xp.abs(Gamma).T @ xp.abs(I)))


render_layer_signed_overlapping = Theorem(
    id="patel2016.render-layer-convnet.signed-overlapping",
    title="The signed rendering layer is NOT one convnet layer over overlapping windows with shared switches",
    source=SOURCE.at("P3's signed layer, stated over overlapping windows (stated non-theorem)", formalisation="p3"),
    statement=(
        r"Over K windows of P slots starting every slot (stride 1, so neighbouring windows share a slot) and one "
        r"switch per slot: $\max_{a, t} \langle \Gamma M_a T_t z, I\rangle \ne \sum_j |z_j| \max_\tau "
        r"\operatorname{ReLU}(s_j (\Gamma^\top I)_{j+\tau})$ in general."
    ),
    expect="false",
    property=_overlap_claim,
    structure=OVERLAP_STRUCTURE,
    sample=overlap_instance,
    tolerance=SUM_TOLERANCE,
    uses=["patel2016.render-layer-convnet.signed"],
)
