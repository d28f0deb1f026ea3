"""JAX configuration for dlverify's own runs, applied explicitly and scoped.

Importing dlverify changes nothing in the host process. Every entry point that evaluates
(the runner, the search, the CLI, the pytest fixture, the notebook helpers) runs inside
:func:`float64`, a context manager that switches on, for the enclosed code only:

* ``jax_enable_x64`` (every verification is in float64),
* ``jax_default_matmul_precision = "highest"`` (exact IEEE float64 products on every platform),
* the persistent compilation cache in ``~/.cache/dlverify/xla`` (``DLVERIFY_XLA_CACHE=off``
  disables it; any other value is the directory), unless the host already set a cache of its own.

On exit the previous values come back, so a plain JAX test in a project that has dlverify
installed still runs in float32. The context is re-entrant and cheap to enter.
"""

from __future__ import annotations

import contextlib
import functools
import os
import threading
from pathlib import Path
from typing import Any, Callable, Iterator, TypeVar

F = TypeVar("F", bound=Callable[..., Any])

#: compiled programs faster than this are not written to the persistent cache: 0, every one, so that
#: what a run leaves in the cache does not depend on how fast the machine compiled (at 0.05 s an idle
#: machine wrote none of a small user theorem's programs and a loaded one some)
CACHE_MIN_COMPILE_SECONDS = 0.0

_depth = threading.local()


def cache_directory() -> Path | None:
    """Where dlverify keeps compiled XLA programs, or None when ``DLVERIFY_XLA_CACHE=off``."""
    where = os.environ.get("DLVERIFY_XLA_CACHE", "")
    if where.lower() in ("off", "0", "no", "false"):
        return None
    if where:
        return Path(where)
    return Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache")) / "dlverify" / "xla"


@contextlib.contextmanager
def _compilation_cache() -> Iterator[None]:
    import jax
    from jax._src import compilation_cache

    path = cache_directory()
    previous = jax.config.jax_compilation_cache_dir
    if path is None or previous:  # disabled, or the host process has its own cache: leave it
        yield
        return
    try:
        path.mkdir(parents=True, exist_ok=True)
    except OSError as exc:  # a read-only home, a file in the way: run without the cache, and say so
        import warnings

        warnings.warn(f"cannot use the compilation cache {path} ({exc.strerror or exc}): running without it",
                      RuntimeWarning, stacklevel=2)
        yield
        return
    saved = (jax.config.jax_persistent_cache_min_compile_time_secs,
             jax.config.jax_persistent_cache_min_entry_size_bytes)
    jax.config.update("jax_compilation_cache_dir", str(path))
    jax.config.update("jax_persistent_cache_min_compile_time_secs", CACHE_MIN_COMPILE_SECONDS)
    jax.config.update("jax_persistent_cache_min_entry_size_bytes", 0)
    compilation_cache.reset_cache()
    try:
        yield
    finally:
        jax.config.update("jax_compilation_cache_dir", previous)
        jax.config.update("jax_persistent_cache_min_compile_time_secs", saved[0])
        jax.config.update("jax_persistent_cache_min_entry_size_bytes", saved[1])
        compilation_cache.reset_cache()


@contextlib.contextmanager
def float64() -> Iterator[None]:
    """Run the enclosed code with dlverify's JAX settings (see the module docstring)."""
    depth = getattr(_depth, "n", 0)
    if depth:  # already inside: nothing to switch
        _depth.n = depth + 1
        try:
            yield
        finally:
            _depth.n -= 1
        return
    import jax

    _depth.n = 1
    try:
        with jax.enable_x64(True), jax.default_matmul_precision("highest"), _compilation_cache():
            yield
    finally:
        _depth.n = 0


def in_float64(fn: F) -> F:
    """Decorator: ``fn`` always runs inside :func:`float64`."""

    @functools.wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        with float64():
            return fn(*args, **kwargs)

    return wrapper  # type: ignore[return-value]


def active() -> bool:
    """Whether the calling thread is inside :func:`float64`."""
    return bool(getattr(_depth, "n", 0))


def numeric_settings() -> dict[str, Any]:
    """The JAX settings in force now (recorded in each certificate from inside the run)."""
    import jax

    from verify.backends import HIGHPREC_DIGITS

    return {
        "jax_enable_x64": bool(jax.config.jax_enable_x64),
        "dtype": "float64" if jax.config.jax_enable_x64 else "float32",
        "jax_default_matmul_precision": str(jax.config.jax_default_matmul_precision or "default"),
        "platform": jax.default_backend(),
        "highprec_digits": HIGHPREC_DIGITS,
    }
