"""A reusable model of the Deep Rendering Mixture Model (Patel, Nguyen, Baraniuk 2016).

Layers are numbered from the image up: layer ``l`` (1..L) has a dictionary ``Gamma_l`` of shape
``D_{l-1} x K_l P_l``, ``K_l`` units whose non-overlapping windows hold ``P_l`` positions each,
switches ``a_l in {0,1}^{K_l P_l}`` and local translations ``t_l in {0..P_l-1}^{K_l}``.
``D_0`` is the image size and ``D_l = K_l``. Class templates ``mu_c`` live in ``R^{K_L}``.
One layer renders ``z -> Lambda_{g_l} z = Gamma_l M_{a_l} T_{t_l} z``: ``T_t`` puts ``z_j`` at
slot ``P j + t_j`` of window ``j``, ``M_a = diag(a)`` switches slots off, ``Gamma_l`` maps the
slots to the layer below. The rendered image of class ``c`` under latents ``g = (g_1..g_L)`` is
``mu_cg = Lambda_{g_1} ... Lambda_{g_L} mu_c``.

Everything here is written over :data:`verify.xp` so theorem properties can call it on both
backends (JAX float64 while searching, 50-digit mpmath when a counterexample is re-evaluated).
Enumeration tables are NumPy integer constants.

Brute force. :func:`brute_force_scores` enumerates every latent configuration jointly:
``prod_l 2^(K_l P_l) P_l^(K_l)`` of them (no factorisation is used; each configuration's score
``<mu_cg, I>`` is computed as ``mu_c^T Lambda_{g_L}^T ... Lambda_{g_1}^T I``). It refuses more
than :data:`MAX_CONFIGURATIONS` (4096) configurations; the theorems stay at or below 1024.
"""

from __future__ import annotations

import functools
import itertools
import math
from collections.abc import Sequence
from typing import Any

import numpy as np

from verify.backends import xp

#: the brute-force oracle refuses architectures with more joint latent configurations than this
MAX_CONFIGURATIONS = 4096

Layers = Sequence[tuple[int, int]]  # ((K_1, P_1), ..., (K_L, P_L)), image side first


# ----------------------------------------------------------------------------- tables


@functools.cache
def switch_table(n: int) -> np.ndarray:
    """All of {0,1}^n as rows (2^n x n)."""
    return np.array(list(itertools.product([0, 1], repeat=n)), dtype=np.int64).reshape(-1, n)


@functools.cache
def slot_table(K: int, P: int) -> np.ndarray:
    """Every independent choice of translations ``t in {0..P-1}^K`` as the slots ``P j + t_j``
    it selects (P^K x K)."""
    offsets = np.array(list(itertools.product(range(P), repeat=K)), dtype=np.int64).reshape(-1, K)
    return P * np.arange(K) + offsets


def layer_configurations(K: int, P: int) -> int:
    """Latent configurations of one layer: 2^(K P) switch settings times P^K translations."""
    return 2 ** (K * P) * P**K


def configurations(layers: Layers) -> int:
    """Joint latent configurations of the whole model (what the brute force enumerates)."""
    return math.prod(layer_configurations(K, P) for K, P in layers)


def dims(layers: Layers, D0: int) -> list[int]:
    """``[D_0, D_1, ..., D_L]`` with ``D_l = K_l``."""
    return [D0, *[K for K, _ in layers]]


def gamma_shape(layers: Layers, D0: int, l: int) -> tuple[int, int]:
    """Shape of ``Gamma_l`` (``l`` from 1): ``D_{l-1} x K_l P_l``."""
    K, P = layers[l - 1]
    return (dims(layers, D0)[l - 1], K * P)


# ----------------------------------------------------------------------------- one layer


def windows(v: Any, K: int, P: int) -> Any:
    """The K non-overlapping windows of a length-KP vector as a K x P array."""
    return v[P * np.arange(K)[:, None] + np.arange(P)[None, :]]


def place(z: Any, t: Any, K: int, P: int) -> Any:
    """``T_t z``: ``z_j`` at slot ``P j + t_j`` of a length-KP vector, zeros elsewhere.
    ``t`` may be a traced integer array (it is compared, never used to index)."""
    onehot = xp.asarray(t)[:, None] == np.arange(P)[None, :]
    return xp.where(onehot, z[:, None], 0 * z[:, None]).reshape(K * P)


def render_layer(Gamma: Any, a: Any, t: Any, z: Any, K: int, P: int) -> Any:
    """``Lambda_g z = Gamma M_a T_t z`` for one layer's latents ``g = (a, t)``."""
    return Gamma @ (a * place(z, t, K, P))


def render(Gammas: Sequence[Any], switches: Sequence[Any], shifts: Sequence[Any], mu: Any, layers: Layers) -> Any:
    """``Lambda_{g_1} ... Lambda_{g_L} mu`` (top-down generation), for one template ``mu``."""
    z = mu
    for l in range(len(layers), 0, -1):
        K, P = layers[l - 1]
        z = render_layer(Gammas[l - 1], switches[l - 1], shifts[l - 1], z, K, P)
    return z


# ----------------------------------------------------------------------------- inference


def forward(Gammas: Sequence[Any], I: Any, layers: Layers) -> Any:
    """The convnet's bottom-up pass: ``u_0 = I``, ``u_l = MaxPool(ReLU(Gamma_l^T u_{l-1}))``."""
    u = I
    for Gamma, (K, P) in zip(Gammas, layers):
        u = xp.max(xp.relu(windows(Gamma.T @ u, K, P)), axis=1)
    return u


def bottom_up_latents(Gammas: Sequence[Any], I: Any, layers: Layers) -> tuple[list[Any], list[Any]]:
    """The latents the bottom-up pass picks (the same for every class): per layer the switches
    ``a_l = [Gamma_l^T u_{l-1} > 0]`` and the translations ``t_l = argmax`` within each window
    (first maximiser on ties). With them ``Lambda_{g_L}^T ... Lambda_{g_1}^T I = u_L`` exactly."""
    u, switches, shifts = I, [], []
    for Gamma, (K, P) in zip(Gammas, layers):
        w = Gamma.T @ u
        switches.append(xp.heaviside(w))
        shifts.append(xp.argmax(windows(w, K, P), axis=1))
        u = xp.max(xp.relu(windows(w, K, P)), axis=1)
    return switches, shifts


def lambda_t_all(v: Any, Gamma: Any, K: int, P: int) -> Any:
    """``Lambda_g^T v = T_t^T M_a Gamma^T v`` for every configuration ``g = (a, t)`` of one layer
    and every row of ``v`` (B x D): returns (B * 2^(KP) * P^K) x K, rows ordered (b, a, t)."""
    w = v @ Gamma  # (B, KP): Gamma^T v for each row
    masked = w[:, None, :] * switch_table(K * P)[None, :, :]  # (B, 2^KP, KP)
    picked = masked[:, :, slot_table(K, P)]  # (B, 2^KP, P^K, K)
    return picked.reshape(-1, K)


def brute_force_scores(Gammas: Sequence[Any], mus: Any, I: Any, layers: Layers) -> Any:
    """``max_g <mu_cg, I>`` for every class (rows of ``mus``), by enumerating every joint latent
    configuration. Raises ValueError above :data:`MAX_CONFIGURATIONS`."""
    n = configurations(layers)
    if n > MAX_CONFIGURATIONS:
        raise ValueError(f"brute force over {n} latent configurations (limit {MAX_CONFIGURATIONS})")
    return xp.max(all_scores(Gammas, mus, I, layers), axis=0)


def all_scores(Gammas: Sequence[Any], mus: Any, I: Any, layers: Layers) -> Any:
    """``<mu_cg, I>`` for every joint configuration g (rows, ordered layer 1 outermost) and
    class c (columns)."""
    v = I[None, :]
    for Gamma, (K, P) in zip(Gammas, layers):
        v = lambda_t_all(v, Gamma, K, P)
    return v @ mus.T


def decode(index: int, layers: Layers) -> tuple[list[np.ndarray], list[np.ndarray]]:
    """The latents (switches, translations per layer) of row ``index`` of :func:`all_scores`."""
    sizes = [(2 ** (K * P), P**K) for K, P in layers]
    flat = [s for pair in sizes for s in pair]
    digits = np.unravel_index(int(index), flat)
    switches, shifts = [], []
    for l, (K, P) in enumerate(layers):
        switches.append(switch_table(K * P)[digits[2 * l]])
        shifts.append(slot_table(K, P)[digits[2 * l + 1]] - P * np.arange(K))
    return switches, shifts


def joint_map(Gammas: Sequence[Any], mus: Any, I: Any, layers: Layers) -> tuple[int, list[np.ndarray], list[np.ndarray], float]:
    """Brute-force joint MAP (NumPy, float64): the best class, its latents, and the score."""
    scores = np.asarray(all_scores([np.asarray(G) for G in Gammas], np.asarray(mus), np.asarray(I), layers))
    g, c = np.unravel_index(int(np.argmax(scores)), scores.shape)
    switches, shifts = decode(int(g), layers)
    return int(c), switches, shifts, float(scores[g, c])


def abs_scale(Gammas: Sequence[Any], mus: Any, I: Any, layers: Layers) -> Any:
    """Per class ``<|mu_c|, v_L>`` with ``v_0 = |I|``, ``v_l = MaxPool(|Gamma_l|^T v_{l-1})``: the
    largest sum of |products| behind any configuration's score (the size of the terms that
    cancel), since every ``Lambda_g^T`` picks one slot per window and switches only remove terms."""
    v = xp.abs(I)
    for Gamma, (K, P) in zip(Gammas, layers):
        v = xp.max(windows(xp.abs(Gamma).T @ v, K, P), axis=1)
    return xp.abs(mus) @ v


# ----------------------------------------------------------------------------- paths


@functools.cache
def path_table(layers: tuple[tuple[int, int], ...], D0: int) -> np.ndarray:
    """Every path from a top unit to a pixel, as rows ``(i_L, tau_L, i_{L-1}, tau_{L-1}, ...,
    i_1, tau_1, x)``: unit ``i_l`` of layer ``l``, the slot ``tau_l`` of its window it goes
    through, and the pixel ``x = i_0``. There are ``D_0 prod_l K_l P_l`` of them."""
    ranges = []
    for K, P in reversed(layers):
        ranges += [range(K), range(P)]
    ranges.append(range(D0))
    return np.array(list(itertools.product(*ranges)), dtype=np.int64).reshape(-1, len(ranges))


def path_terms(Gammas: Sequence[Any], switches: Sequence[Any], shifts: Sequence[Any], mu: Any, layers: Layers,
               D0: int) -> tuple[Any, Any, Any, np.ndarray]:
    """For every path p (rows of :func:`path_table`): the weight ``mu_{i_L} prod_l
    Gamma_l[i_{l-1}, P_l i_l + tau_l]``, whether every switch on it is on, whether every slot is
    the one its translation picks (the path exists in this rendering), and the pixel it ends at.
    A path is *active* when both hold."""
    table = path_table(tuple(map(tuple, layers)), D0)
    L = len(layers)
    col = lambda l: 2 * (L - l)  # column of i_l (l = L..1); i_0 = x is the last column
    weight, on, placed = mu[table[:, 0]], True, True
    for l in range(L, 0, -1):
        P = layers[l - 1][1]
        i_l, tau, below = table[:, col(l)], table[:, col(l) + 1], table[:, col(l) + 2]
        slot = P * i_l + tau
        weight = weight * Gammas[l - 1][below, slot]
        on = on & (xp.asarray(switches[l - 1])[slot] > 0)
        placed = placed & (xp.asarray(shifts[l - 1])[i_l] == tau)
    return weight, on, placed, table[:, -1]


def sum_over_paths(weight: Any, mask: Any, pixel: np.ndarray, D0: int) -> Any:
    """Per pixel x, the sum of ``weight`` over the paths ending at x where ``mask`` holds."""
    ends = pixel[None, :] == np.arange(D0)[:, None]  # (D0, paths)
    return xp.sum(xp.where(ends & mask[None, :], weight[None, :], 0 * weight[None, :]), axis=1)
