"""The cross-check's evaluator computes a sum or a maximum once per setting of the variables it
reads (not once per visit), and gives the values, and the first broken assumption, that the
expression means."""

from __future__ import annotations

import numpy as np
import sympy as sp

from verify import MaxOver, MinOver
from verify.engine.crosscheck import Evaluator
from verify.values import Structure

_i = [sp.Symbol(f"i{k}", integer=True) for k in range(4)]
_W = [sp.IndexedBase(f"W{k}") for k in range(3)]
_I, _u, _z, _a = sp.IndexedBase("I"), sp.IndexedBase("u"), sp.IndexedBase("z"), sp.IndexedBase("a")
_y = sp.IndexedBase("y", nonnegative=True)


def _relu_score(widths: list[int]) -> sp.Expr:
    """u . ReLU(W2 ReLU(W1 ReLU(W0 I))): each unit's sum is read by every unit of the layer above."""
    h = lambda k: _I[k]  # noqa: E731 - the input, as a function of its unit
    for layer, n in enumerate(widths[:-1]):
        h = (lambda unit, layer=layer, n=n, prev=h:
             sp.Max(sp.Sum(_W[layer][unit, _i[layer]] * prev(_i[layer]), (_i[layer], 0, n - 1)), 0))
    top = _i[len(widths) - 1]
    return sp.Sum(_u[top] * h(top), (top, 0, widths[-1] - 1))


def test_a_deep_relu_score_is_the_forward_pass_and_each_unit_is_computed_once() -> None:
    widths = [4, 4, 4, 4]
    rng = np.random.default_rng(0)
    x = {"I": rng.normal(size=4), "u": rng.normal(size=4), **{f"W{k}": rng.normal(size=(4, 4)) for k in range(3)}}
    h = x["I"]
    for k in range(3):
        h = np.maximum(x[f"W{k}"] @ h, 0)
    ev = Evaluator({}, Structure({}), x)
    assert abs(ev(_relu_score(widths), {}) - float(x["u"] @ h)) <= 1e-12 * (1 + abs(float(x["u"] @ h)))
    # each of the 12 hidden units is summed once: 323 steps, where computing a unit anew for every
    # unit above that reads it takes 2,291 (and 4x more per layer added)
    assert ev.steps < 600, ev.steps


def test_a_maximum_over_switches_shares_the_parts_that_do_not_read_them() -> None:
    """max_a sum_i a_i z_i + sum_i z_i^2 = sum_i max(z_i, 0) + |z|^2: the second sum reads no
    switch, the first reads them all (so it is not kept while they are enumerated)."""
    D = 6
    i = sp.Symbol("i", integer=True)
    e = MaxOver(sp.Sum(_a[i] * _z[i], (i, 0, D - 1)) + sp.Sum(_z[i] ** 2, (i, 0, D - 1)), (_a, [0, 1]))
    z = np.random.default_rng(1).normal(size=D)
    value = Evaluator({}, Structure({}), {"z": z})(e, {})
    assert abs(value - (np.maximum(z, 0).sum() + (z ** 2).sum())) <= 1e-12


def test_the_first_broken_assumption_is_the_first_entry_read() -> None:
    """y >= 0 is claimed; y[1] and y[2] are negative: y[1] is read first, and reading it again from
    a sum computed once changes nothing."""
    j, k = sp.Symbol("j", integer=True), sp.Symbol("k", integer=True)
    e = sp.Sum(sp.Sum(_y[k], (k, 0, 2)) * _z[j], (j, 0, 2))
    ev = Evaluator({}, Structure({}), {"y": np.array([1.0, -2.0, -3.0]), "z": np.ones(3)})
    assert ev(e, {}) == -12.0
    assert ev.assumption_breaks[0] == ("the claim takes y nonnegative, but y[1] = -2.0 on an instance meeting the "
                                       "assumptions")
    assert len(ev.assumption_breaks) == 2  # y[1], y[2]: once each


def _brute(D: int, f) -> list[float]:
    """f(a) over every a in {0,1}^D."""
    return [f(np.array(a)) for a in np.ndindex(*(2,) * D)]


def test_a_maximum_of_terms_on_separate_switches_is_the_sum_of_their_maxima() -> None:
    """max_a sum_i a_i z_i u_i over {0,1}^12: each term reads its own switch, so each is maximised
    alone (12 two-way choices), not over the 4,096 settings of all of them; min likewise."""
    D = 12
    i = sp.Symbol("i", integer=True)
    rng = np.random.default_rng(2)
    x = {"z": rng.normal(size=D), "u": rng.normal(size=D)}
    body = sp.Sum(_a[i] * _z[i] * _u[i], (i, 0, D - 1))
    c = x["z"] * x["u"]
    for extremum, want in ((MaxOver, np.maximum(c, 0).sum()), (MinOver, np.minimum(c, 0).sum())):
        ev = Evaluator({}, Structure({}), x)
        assert abs(ev(extremum(body, (_a, [0, 1])), {}) - want) <= 1e-12
        assert ev.steps < 1_000, ev.steps  # enumerating the 4,096 settings takes > 100,000


def test_terms_that_share_a_switch_are_maximised_jointly() -> None:
    """max_a (sum_i a_i z_i - 3 a_0 a_1): two terms read a_0 (and a_1), so the maximum does not
    separate; it is the maximum over all 2^5 settings (checked by brute force, on draws where the
    coupling decides: summing the terms' maxima would give a larger value)."""
    D = 5
    i = sp.Symbol("i", integer=True)
    e = MaxOver(sp.Sum(_a[i] * _z[i], (i, 0, D - 1)) - 3 * _a[0] * _a[1], (_a, [0, 1]))
    rng = np.random.default_rng(3)
    decided = 0
    for _ in range(20):
        z = rng.normal(size=D)
        want = max(_brute(D, lambda a, z=z: float(a @ z - 3 * a[0] * a[1])))
        separate = float(np.maximum(z, 0).sum())
        assert abs(Evaluator({}, Structure({}), {"z": z})(e, {}) - want) <= 1e-12
        decided += separate > want + 1e-9
    assert decided > 0  # some draw had z_0, z_1 > 0, where the coupling matters
