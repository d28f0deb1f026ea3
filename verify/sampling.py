"""Random values for one instance: the continuous half of a strategy.

A theorem's ``sample(rng, s)`` builds one instance of structure ``s`` from ``rng``, an
:class:`Rng`. The engine fills each instance's ``rng`` from a JAX PRNG key with one call to
``jax.random.uniform`` for the whole batch, and the sampler turns those uniforms into normals,
integers, coins and so on with plain arithmetic. That keeps the sampler free of PRNG kernels,
which are slow to compile, so one random stream compiles once per batch shape rather than once
per theorem and structure. How many uniforms an instance needs is found by tracing the sampler
abstractly (``jax.eval_shape``), never by guessing.

Random Gaussians almost never land where max-sum identities break (zeros, ties, kinks):
:meth:`Rng.reals` mixes in exact zeros and small integers on purpose.
"""

from __future__ import annotations

import math
from typing import Any

import jax.numpy as jnp


class Rng:
    """Sequential draws from a per-instance vector of uniforms in (0, 1]."""

    def __init__(self, pool: Any | None) -> None:
        self._pool = pool
        self.used = 0

    def _take(self, shape: Any) -> Any:
        shape = (shape,) if isinstance(shape, int) else tuple(shape)
        n = math.prod(shape)
        start, self.used = self.used, self.used + n
        if self._pool is None:  # counting pass (under jax.eval_shape)
            return jnp.full(shape, 0.5)
        if self.used > self._pool.shape[0]:
            raise RuntimeError("sampler drew more random numbers than it did when counted")
        return self._pool[start : start + n].reshape(shape)

    def uniform(self, shape: Any, low: float = 0.0, high: float = 1.0) -> Any:
        """Uniform on (low, high]."""
        return low + (high - low) * self._take(shape)

    def normal(self, shape: Any) -> Any:
        """Standard normals (Box-Muller on two uniforms each)."""
        u1, u2 = self._take(shape), self._take(shape)
        return jnp.sqrt(-2.0 * jnp.log(u1)) * jnp.cos(2.0 * jnp.pi * u2)

    def integers(self, low: int, high: int, shape: Any = ()) -> Any:
        """Integers uniform in ``[low, high)``."""
        u = self._take(shape)
        return jnp.clip(low + jnp.floor((1.0 - u) * (high - low)), low, high - 1).astype(jnp.int64)

    def coin(self, p: float = 0.5, shape: Any = ()) -> Any:
        """Booleans, True with probability ``p``."""
        return self._take(shape) <= p

    def reals(self, shape: Any, zeros: float = 0.1, integers: float = 0.1) -> Any:
        """Standard normals with a fraction of exact zeros and of integers in {-2..2}
        (ties and kinks that Gaussians alone would miss)."""
        gauss = self.normal(shape)
        mode = self._take(shape)
        ints = self.integers(-2, 3, shape).astype(jnp.float64)
        return jnp.where(mode <= zeros, 0.0, jnp.where(mode <= zeros + integers, ints, gauss))

    def maybe_abs(self, x: Any, p: float = 0.5) -> Any:
        """``|x|`` with probability ``p`` for the whole instance, else ``x``: one batch then holds
        instances that meet a sign assumption and instances that violate it."""
        return jnp.where(self.coin(p), jnp.abs(x), x)
