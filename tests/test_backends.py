"""The xp contract: one list of names, the same on both backends; anything else is a clear error."""

from __future__ import annotations

import mpmath
import numpy as np
import pytest

from verify import Assumption, Tolerance, residual, xp
from verify.backends import CONTRACT, FLOAT64_ONLY, XpError, backend, to_highprec
from verify.engine.evaluate import judge
from verify.values import Structure

ELEMENTARY = ["sqrt", "exp", "log", "log1p", "expm1", "sin", "cos", "tan", "tanh", "arctan", "abs", "sign",
              "square", "floor", "ceil"]


@pytest.mark.parametrize("name", ELEMENTARY)
def test_elementary_functions_agree_between_float64_and_50_digits(name):
    v = np.array([0.3, 1.7, 2.5])
    with backend("jax"):
        f64 = np.asarray(getattr(xp, name)(xp.asarray(v)))
    with backend("highprec"):
        hp = getattr(xp, name)(to_highprec(v))
        assert all(isinstance(h, (mpmath.mpf, int)) for h in np.ravel(hp))  # never a float: no rounding to 53 bits
    # float64 elementary functions are correctly rounded to within a few ulp
    np.testing.assert_allclose(np.asarray(hp, dtype=float), f64, rtol=4e-16, atol=0)


@pytest.mark.parametrize("which", ["jax", "highprec", "numpy"])
def test_a_name_outside_the_contract_is_an_error_naming_it(which):
    with backend(which), pytest.raises(XpError, match=r"xp\.fft is not part of the xp contract"):
        xp.fft
    assert "fft" not in CONTRACT and "tanh" in CONTRACT


def test_every_contract_name_resolves_on_every_backend():
    for which in ("jax", "highprec", "numpy"):
        with backend(which):
            for name in CONTRACT - {"jax"}:
                getattr(xp, name)


def test_float64_only_components_are_skipped_at_50_digits_and_reported():
    """A component about JAX itself fails in float64; at 50 digits it is skipped, and the
    violation is established in float64 only (never 'real', never 'rounding')."""
    def prop(s, x):
        return {
            "exact": residual(x["a"] + x["a"], 2.0 * x["a"]),
            "about_jax": xp.float64_only(lambda: residual(xp.jax.grad(lambda t: t * t)(x["a"]), 0.0, 1.0)),
        }

    with backend("highprec"):
        assert prop(None, to_highprec({"a": np.float64(1.5)}))["about_jax"] is FLOAT64_ONLY
    tol = Tolerance(0.0, 1e-14, "exact sums")
    j = judge(prop, [], tol, Structure({}), {"a": np.float64(1.5)}, [])
    assert j.established == "float64 only" and j.exceeds and j.float64_only == ("about_jax",)
    assert "about_jax" in j.note


def test_a_violation_that_vanishes_at_50_digits_is_rounding_and_a_real_one_is_real():
    a = Assumption("any", "always", lambda s, x: xp.asarray(True))
    tight = Tolerance(0.0, 0.0, "deliberately exact")
    rounding = lambda s, x: residual((x["a"] + x["b"]) - x["b"], x["a"])  # noqa: E731 - 0 exactly, not in float64
    x = {"a": np.float64(0.1), "b": np.float64(1e17 / 3)}
    j = judge(rounding, [a], tight, Structure({}), x, [0])
    assert j.f64["ratio"] > 1 and j.established == "rounding" and not j.exceeds
    real = lambda s, x: residual(x["a"] * 2.0, x["a"])  # noqa: E731
    assert judge(real, [a], tight, Structure({}), x, [0]).established == "real"


@pytest.mark.parametrize("name", ELEMENTARY + ["relu", "heaviside"])
def test_the_numpy_backend_computes_what_jax_computes(name):
    """The cross-check evaluates a property eagerly with NumPy: the same float64 values as JAX's."""
    v = np.array([-1.5, 0.0, 0.3, 1.7, 2.5])
    if name in ("sqrt", "log", "log1p"):
        v = np.abs(v) + 0.25
    with backend("jax"):
        f64 = np.asarray(getattr(xp, name)(xp.asarray(v)))
    with backend("numpy"):
        out = getattr(xp, name)(xp.asarray(v))
    assert isinstance(out, np.ndarray) and out.dtype == np.float64
    np.testing.assert_allclose(out, f64, rtol=4e-16, atol=0)


def test_the_numpy_backend_sums_segments_and_skips_claims_about_jax():
    vals, ids = np.arange(6.0).reshape(3, 2), np.array([1, 0, 1])
    with backend("jax"):
        ref = np.asarray(xp.segment_sum(xp.asarray(vals), ids, 3))
    with backend("numpy"):
        np.testing.assert_array_equal(xp.segment_sum(vals, ids, 3), ref)
        assert xp.float64_only(lambda: 1 / 0) is FLOAT64_ONLY
        with pytest.raises(XpError, match="only available inside"):
            xp.jax


def test_the_crosscheck_reads_a_propertys_sides_with_numpy_else_with_jax():
    import jax

    from verify.engine.crosscheck import _property_sides

    x, s = {"a": np.array([1.0, 2.0])}, Structure({})
    plain = _property_sides(lambda s, x: {"c": residual(xp.sum(x["a"] ** 2), 5.0)}, s, x, "c")["c"]
    assert isinstance(plain.lhs, np.number | np.ndarray) and float(plain.lhs) == 5.0
    jax_only = _property_sides(lambda s, x: {"c": residual(xp.asarray(x["a"]).at[0].set(0.0).sum(), 2.0)}, s, x, "c")
    assert isinstance(jax_only["c"].lhs, jax.Array) and float(jax_only["c"].lhs) == 2.0  # NumPy has no .at: JAX ran
    about_jax = _property_sides(
        lambda s, x: {"g": xp.float64_only(lambda: residual(xp.jax.grad(lambda t: t * t)(x["a"][1]), 4.0))}, s, x, "g")
    assert float(about_jax["g"].lhs) == 4.0  # a claim about JAX is read from JAX
