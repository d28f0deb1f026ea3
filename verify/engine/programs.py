"""Compiled programs (and derivation checks), kept across theorems and, on disk, across runs.

A search compiles one XLA program per structure (and per batch shape). Tracing the Python code
and lowering it cost more than XLA's own compilation, and XLA's persistent cache saves only the
latter: a warm run still traces and lowers every program to find its cache key. Here a program is
named instead by what determines it, and its executable is kept under that name:

* in memory, for the life of the process, across theorems (an engine program such as the
  uniform pool of a batch shape is shared by every theorem), the least recently used released
  beyond :data:`MAX_PROGRAMS` (each XLA CPU executable holds memory maps of its own, and a process
  has a limited number of them);
* on disk, in ``programs/`` under the compilation cache directory (``DLVERIFY_XLA_CACHE``; ``off``
  disables both), for the programs of theorems whose code is fixed by source files the engine
  hashes: the catalogue's and the engine's own. A program's name holds the SHA-256 of the
  engine's sources and of the theorem's module with the catalogue modules it imports, the theorem
  id and the role of each function in it (``property``, ``mutant:NAME``, ``sample``,
  ``assumption:NAME``, ...), the tolerance, the structure and the argument shapes, and the
  versions of Python, NumPy, JAX and jaxlib, the platform and the numeric settings. Theorems from
  users' files, plug-ins or test modules (whose code may import anything) and structures holding
  anything but plain values are compiled in memory only.

The result of checking a derivation of a catalogue theorem with SymPy, and what z3 decided of its
claim at the sizes searched (:func:`kept`), are kept the same way: they depend on nothing but the
same sources, the sizes and the libraries' versions, so a warm run reads what the very same check
established, and the certificate is the same either way. (z3 works within a time limit: a size
it could not decide in time is not tried again until the sources or the sizes change.)

A file that cannot be read back (truncated, from another build) is computed anew and replaced.
"""

from __future__ import annotations

import ast
import collections
import contextlib
import functools
import hashlib
import importlib.util
import json
import os
import pickle
import platform
import sys
import threading
from pathlib import Path
from typing import Any, Callable, Iterable, Iterator

from verify.config import cache_directory

#: compiled programs kept in memory at most (far below the kernel's memory-map limit)
MAX_PROGRAMS = 512

#: what a program that is not kept here yet is compiled with. ``False`` (the default): without
#: XLA's persistent cache, so that it is compiled anew and kept here, and every later run loads
#: it. ``True``: with XLA's cache, whose entries outlive a change of the sources (they are keyed
#: by the lowered program), so a program XLA already holds is only traced and lowered; but an
#: executable read back from XLA's cache loses its kernels when serialised again (jaxlib's CPU
#: client: "Function ... not found" when run), so such a program is not kept here. The test suite,
#: which runs each commit once, reuses XLA's cache.
REUSE_XLA_CACHE = False

#: XLA options of dlverify's own programs, passed to each compilation (never set for the process,
#: so a host's JAX is left as it is). XLA's CPU fusion emitters off: compiling a search's programs
#: took 9 to 36% less time (tian2018.thm2.reformulation 39.8 -> 36.3 s, koo.backprop.saliency-
#: homogeneous 7.5 -> 4.8 s, tian2018.thm8 29.0 -> 22.0 s, 8 to 12 batches on an empty cache, 2
#: cores), at about the same rates (benchmarks/bench_arithmetic.py, batch 4096: P1 6% slower, the
#: teacher models 0 to 14% faster).
#: A jaxlib that has no such option compiles without it. Part of a kept program's name.
COMPILER_OPTIONS: dict[str, Any] = {"xla_cpu_use_fusion_emitters": False}

#: the options added for a program compiled to run a few times (``run(..., optimise=False)``, the
#: default): LLVM's optimisation off. XLA's own passes are the same (the same fusions, and the same
#: estimate of the work, :func:`cost`); only the machine code is less optimised. On 11 of the
#: catalogue's programs (2 cores, batch 512) compiling took 4.0 s in place of 8.3 s and running them
#: 31 ms in place of 18.5 ms: most programs of a search evaluate one batch or a few, and the suite
#: compiles about 1,500. The engine asks for the optimised program where a structure's batches
#: come to more work (:data:`verify.engine.search.OPTIMISE_AFTER`). The two run the same float64
#: operations, but the optimised code may contract a multiply and an add into one fused operation,
#: so the last digits of a residual can differ between them (a tolerance that only holds with the
#: contraction is wrong: koo.backprop's at a saturated tanh was); which of the two evaluates a batch
#: depends only on the batches before it, never on a cache or the clock. Part of a kept program's name.
QUICK_OPTIONS: dict[str, Any] = {"xla_backend_optimization_level": 0}

_lock = threading.Lock()
_memory: "collections.OrderedDict[tuple, Any]" = collections.OrderedDict()
#: id(function) -> (function, its name): the functions of registered theorems
_names: dict[int, tuple[Any, str]] = {}
stats = collections.Counter()


@functools.lru_cache(maxsize=None)
def _sources_hash(package: str) -> str:
    spec = importlib.util.find_spec(package)
    h = hashlib.sha256()
    if spec is None or not spec.submodule_search_locations:
        return ""
    root = Path(next(iter(spec.submodule_search_locations)))
    for path in sorted(root.rglob("*.py")):
        h.update(path.relative_to(root).as_posix().encode() + b"\0" + path.read_bytes() + b"\0")
    return h.hexdigest()


@functools.lru_cache(maxsize=None)
def _module_sources(module: str) -> str:
    """SHA-256 over a catalogue module's source, its packages' ``__init__`` and every catalogue
    module it imports, transitively (read from the import statements): editing one module of the
    catalogue leaves the programs of the others valid."""
    seen: dict[str, bytes] = {}
    todo = [module]
    while todo:
        name = todo.pop()
        if name in seen:
            continue
        spec = importlib.util.find_spec(name)
        if spec is None or spec.origin is None or not spec.origin.endswith(".py"):
            raise ImportError(f"cannot locate the source of {name}")
        source = Path(spec.origin).read_bytes()
        seen[name] = source
        package = name if spec.submodule_search_locations else name.rpartition(".")[0]
        todo += [".".join(name.split(".")[:k]) for k in range(1, name.count(".") + 1)]  # the packages above
        for node in ast.walk(ast.parse(source)):
            if isinstance(node, ast.Import):
                todo += [a.name for a in node.names if a.name.split(".")[0] == "theorems"]
            elif isinstance(node, ast.ImportFrom):
                base = node.module or ""
                if node.level:
                    base = ".".join(package.split(".")[: len(package.split(".")) - node.level + 1] + ([base] if base else []))
                if base.split(".")[0] != "theorems":
                    continue
                todo.append(base)
                todo += [f"{base}.{a.name}" for a in node.names if _is_module(f"{base}.{a.name}")]
    h = hashlib.sha256()
    for name in sorted(seen):
        h.update(name.encode() + b"\0" + seen[name] + b"\0")
    return h.hexdigest()


def _is_module(name: str) -> bool:
    try:
        return importlib.util.find_spec(name) is not None
    except (ImportError, AttributeError, ValueError):  # ``package.module.NAME``: a name, not a module
        return False


def _theorem_sources(theorem: Any) -> str | None:
    """The hash that pins down a catalogue theorem's code (the engine's sources and its module's),
    or None for a theorem from anywhere else."""
    module = str(getattr(theorem, "module", ""))
    if not module.startswith("theorems."):
        return None
    try:
        return f"{_sources_hash('verify')}:{_module_sources(module)}"
    except (ImportError, OSError, SyntaxError, ValueError):
        return None


def _environment() -> str:
    import jax
    import jaxlib
    import numpy as np

    device = jax.devices()[0]
    return ":".join(map(str, (
        sys.version.split()[0], np.__version__, jax.__version__, jaxlib.__version__, platform.machine(),
        device.platform, getattr(device, "device_kind", ""), bool(jax.config.jax_enable_x64),
        jax.config.jax_default_matmul_precision, sorted(COMPILER_OPTIONS.items()), sorted(QUICK_OPTIONS.items()))))


def register(theorem: Any) -> None:
    """Name the functions of a catalogue theorem, so that its programs can be kept on disk (called
    by the registry for every theorem of the catalogue it loads)."""
    sources = _theorem_sources(theorem)
    if sources is None:
        return
    base = f"{sources}:{theorem.id}"
    named = [(theorem.property, "property"), (theorem.sample, "sample")]
    named += [(m.property, f"mutant:{m.name}") for m in theorem.mutants]
    named += [(a, f"assumption:{a.name}") for a in theorem.assumptions]
    named += [(g, f"regime:{g.name}") for g in theorem.trivial]
    with _lock:
        for fn, role in named:
            _names[id(fn)] = (fn, f"{base}:{role}")


def name_of(*parts: Any) -> str | None:
    """A stable name for a program made of ``parts`` (registered functions, tuples of them, plain
    values), or None when one of them has no stable name."""
    out = []
    for p in parts:
        if isinstance(p, tuple):
            inner = name_of(*p)
            if inner is None:
                return None
            out.append(f"({inner})")
        elif isinstance(p, (str, int, float, bool)) or p is None:
            out.append(repr(p))
        else:
            hit = _names.get(id(p))
            if hit is None or hit[0] is not p:
                return None
            out.append(hit[1])
    return "|".join(out)


def _plain(value: Any) -> bool:
    if isinstance(value, (str, int, float, bool)) or value is None:
        return True
    if isinstance(value, tuple):
        return all(_plain(v) for v in value)
    if hasattr(value, "as_json") and hasattr(value, "items"):  # a Structure
        return all(_plain(v) for _, v in value.items())
    return False


def _shapes(args: Iterable[Any]) -> tuple:
    import jax
    import numpy as np

    leaves, tree = jax.tree_util.tree_flatten(tuple(args))
    return (str(tree), tuple((tuple(np.shape(a)), str(getattr(a, "dtype", type(a).__name__))) for a in leaves))


def run(name: str | None, fn: Callable[..., Any], static: Any, *args: Any, optimise: bool = False) -> Any:
    """``fn(static, *args)``, compiled for ``static`` and the shapes of ``args``: from memory, from
    disk (when ``name`` names the program and ``static`` is plain), or compiled now; with LLVM's
    optimisations when ``optimise``, else quickly (:data:`QUICK_OPTIONS`)."""
    return _program(name, fn, static, args, optimise)(*args)


def _options(optimise: bool) -> dict[str, Any]:
    return dict(COMPILER_OPTIONS) if optimise else COMPILER_OPTIONS | QUICK_OPTIONS


def _program(name: str | None, fn: Callable[..., Any], static: Any, args: tuple, optimise: bool = False) -> Any:
    key = (fn, static, _shapes(args), optimise)
    with _lock:
        program = _memory.get(key)
        if program is not None:
            _memory.move_to_end(key)
    if program is None:
        program = _load_or_compile(name, fn, static, args, key[2], optimise)
        with _lock:
            _memory[key] = program
            while len(_memory) > MAX_PROGRAMS:
                _memory.popitem(last=False)
    return program


def analysis(name: str | None, fn: Callable[..., Any], static: Any, *args: Any) -> dict[str, float] | None:
    """XLA's estimate of one call of the program :func:`run` runs for these arguments:
    ``{"flops": ..., "bytes": ...}`` (floating-point operations and bytes accessed; the same on a
    cold and a warm cache, and for the quick and the optimised program: the estimate is of XLA's
    own passes, read from the quick one). None when XLA gives none."""
    try:
        found = _program(name, fn, static, args).cost_analysis()
    except Exception:  # noqa: BLE001 - no estimate on this backend
        return None
    if isinstance(found, (list, tuple)):
        found = found[0] if found else None
    if not found or "flops" not in found:
        return None
    return {"flops": float(found["flops"]), "bytes": float(found.get("bytes accessed", 0.0))}


def cost(name: str | None, fn: Callable[..., Any], static: Any, *args: Any) -> float | None:
    """The work of one call (:func:`analysis`): floating-point operations plus bytes accessed."""
    found = analysis(name, fn, static, *args)
    return None if found is None else found["flops"] + found["bytes"]


def _file(name: str, static: Any, shapes: tuple, suffix: str = ".bin") -> Path | None:
    where = cache_directory()
    if where is None or not _plain(static):
        return None
    text = "\n".join((name, repr(static), repr(shapes), _environment()))
    return where / "programs" / f"{hashlib.sha256(text.encode()).hexdigest()}{suffix}"


def code_identity(theorem: Any) -> str:
    """What pins down a theorem's code as far as the engine can tell: the engine's sources with the
    catalogue module's (and what it imports) or a user file's SHA-256; "" for the module's part when
    the theorem comes from elsewhere (a plug-in, a test module)."""
    return f"{_sources_hash('verify')}:{_theorem_sources(theorem) or getattr(theorem, 'module_sha256', '')}"


def theorem_name(theorem: Any, role: str) -> str | None:
    """The stable name of one part of a catalogue theorem (``derivation:0``, ``mutant:NAME``), or
    None for a theorem whose code the engine does not hash (see the module docstring)."""
    sources = _theorem_sources(theorem)
    return None if sources is None else f"{sources}:{theorem.id}:{role}"


def content_name(kind: str, *parts: str) -> str:
    """A name for a value computed by the engine from ``parts`` alone (texts that say everything it
    depends on, e.g. an expression's ``srepr``)."""
    digest = hashlib.sha256("\0".join(parts).encode()).hexdigest()
    return f"{_sources_hash('verify')}:{kind}:{digest}"


def kept(name: str | None, compute: Callable[[], Any]) -> Any:
    """``compute()``, kept on disk under ``name`` (which names everything it depends on) and
    SymPy's version: checking a derivation with SymPy, or what z3 decided of a claim at given
    sizes. Computed anew when there is no cache, no name, or the file cannot be read back."""
    import sympy

    path = _file(f"{name}:sympy {sympy.__version__}", None, (), ".pickle") if name is not None else None
    if path is not None and path.is_file():
        try:
            value = pickle.loads(path.read_bytes())
            stats["results loaded"] += 1
            return value
        except Exception:  # noqa: BLE001 - unreadable: compute it anew
            stats["unreadable"] += 1
    value = compute()
    if path is not None:
        _store(path, lambda: pickle.dumps(value))
    return value


def remembered(name: str | None, static: Any, compute: Callable[[], int]) -> int:
    """A number found by tracing (how many uniforms a sampler draws at a structure), kept on disk
    under the same rule as the programs."""
    path = _file(name, static, (), ".int") if name is not None else None
    if path is not None and path.is_file():
        try:
            return int(path.read_text())
        except (OSError, ValueError):
            pass
    value = compute()
    if path is not None:
        _store(path, lambda: str(int(value)).encode())
    return value


def _load_or_compile(name: str | None, fn: Callable[..., Any], static: Any, args: tuple, shapes: tuple,
                     optimise: bool = False) -> Any:
    import jax
    from jax.experimental.serialize_executable import deserialize_and_load, serialize

    path = _file(f"{name}|{'optimised' if optimise else 'quick'}", static, shapes) if name is not None else None
    if path is not None and path.is_file():
        try:
            payload, in_tree, out_tree = pickle.loads(path.read_bytes())
            program = deserialize_and_load(payload, in_tree, out_tree)
            stats["loaded"] += 1
            return program
        except Exception:  # noqa: BLE001 - unreadable (truncated, another build): compile it anew
            stats["unreadable"] += 1
    lowered = _lowering(fn, static, args, shapes, optimise)
    hits = _xla_cache_hits()
    if path is None or REUSE_XLA_CACHE:
        program = _compile(lowered, optimise)
    else:
        with _without_xla_cache():
            program = _compile(lowered, optimise)
    stats["compiled"] += 1
    if path is None:
        return program
    if _xla_cache_hits() != hits:
        # XLA's own cache had it (the same program under other sources, a commit ago): an
        # executable read back from there loses its kernels when serialised again (jaxlib's CPU
        # client: "Function ... not found" when run), so it is not kept here
        stats["from XLA's cache"] += 1
    elif _store(path, lambda: pickle.dumps(serialize(program))):
        stats["saved"] += 1
    return program


#: lowerings of quick programs kept for their optimised compilation, at most: the optimised program
#: of a structure is compiled from the lowering its quick one was compiled from, not traced and
#: lowered again (and the lowering is then dropped). On tian2018.thm2.reformulation's numeric search
#: (26 programs, 6 of them compiled both ways) with an empty cache: 48.6 s in place of 65.1 s, one
#: run each on 2 cores; on koo.backprop.block-layer, which reuses none, about 55 MB more memory
MAX_LOWERED = 32
_lowered: "collections.OrderedDict[tuple, Any]" = collections.OrderedDict()


def _lowering(fn: Callable[..., Any], static: Any, args: tuple, shapes: tuple, optimise: bool) -> Any:
    """``fn`` traced and lowered for ``static`` and the shapes of ``args``: for an optimised program,
    the lowering its quick program was compiled from when it is still kept."""
    import jax

    key = (fn, static, shapes)
    with _lock:
        lowered = _lowered.pop(key, None) if optimise else None
    if lowered is None:
        lowered = jax.jit(functools.partial(fn, static)).lower(*args)
        stats["lowered"] += 1
    if not optimise:
        with _lock:
            _lowered[key] = lowered
            while len(_lowered) > MAX_LOWERED:
                _lowered.popitem(last=False)
    return lowered


def _compile(lowered: Any, optimise: bool = False) -> Any:
    """``lowered`` compiled with :data:`COMPILER_OPTIONS` and, unless ``optimise``, :data:`QUICK_OPTIONS`
    (without an option jaxlib does not know, from then on)."""
    global COMPILER_OPTIONS, QUICK_OPTIONS
    while options := _options(optimise):
        try:
            return lowered.compile(compiler_options=options)
        except Exception as exc:  # noqa: BLE001 - an option this jaxlib does not have
            refused = [k for k in options if k in str(exc)]
            if not refused:
                raise
            COMPILER_OPTIONS = {k: v for k, v in COMPILER_OPTIONS.items() if k not in refused}
            QUICK_OPTIONS = {k: v for k, v in QUICK_OPTIONS.items() if k not in refused}
    return lowered.compile()


@contextlib.contextmanager
def _without_xla_cache() -> Iterator[None]:
    """XLA's persistent cache off for one compilation, so that the executable is compiled here and
    can be serialised (one read back from XLA's cache cannot: see :data:`REUSE_XLA_CACHE`)."""
    import jax
    from jax._src import compilation_cache

    was = jax.config.jax_enable_compilation_cache
    jax.config.update("jax_enable_compilation_cache", False)
    compilation_cache.reset_cache()
    try:
        yield
    finally:
        jax.config.update("jax_enable_compilation_cache", was)
        compilation_cache.reset_cache()


_hit_count = [0]


@functools.lru_cache(maxsize=1)
def _listen() -> None:
    import jax.monitoring

    def on(event: str, **_: Any) -> None:
        if event == "/jax/compilation_cache/cache_hits":
            _hit_count[0] += 1

    jax.monitoring.register_event_listener(on)


def _xla_cache_hits() -> int:
    """How many times XLA's persistent cache has answered a compilation in this process."""
    _listen()
    return _hit_count[0]


def _store(path: Path, data: Callable[[], bytes]) -> bool:
    """Write ``data()`` to ``path`` atomically (a temporary file, then a rename, so a reader never
    sees half a file); False when it cannot be serialised (an executable holding constants, an
    object that does not pickle) or the disk refuses: the value is then kept in memory only."""
    try:
        blob = data()
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(f"{path.name}.{os.getpid()}.tmp")
        tmp.write_bytes(blob)
        tmp.replace(path)
        return True
    except Exception:  # noqa: BLE001 - see the docstring
        stats["not saved"] += 1
        return False


def durations() -> dict[str, float]:
    """How long each theorem took when it last ran (seconds, by id), or {} without a cache. Only
    ever a hint for the order in which ``verify run --jobs`` hands theorems to its workers."""
    where = cache_directory()
    try:
        data = json.loads((where / "durations.json").read_text()) if where is not None else {}
        return {str(k): float(v) for k, v in data.items()} if isinstance(data, dict) else {}
    except (OSError, ValueError, TypeError):
        return {}


def remember_durations(seconds: dict[str, float]) -> None:
    """Add ``seconds`` (by theorem id) to :func:`durations`."""
    where = cache_directory()
    if where is not None and seconds:
        merged = durations() | {k: round(float(v), 2) for k, v in seconds.items()}
        _store(where / "durations.json", lambda: json.dumps(merged, sort_keys=True).encode())


def release(keep: int = 0) -> None:
    """Release compiled programs held in memory, keeping the ``keep`` most recently used, and every
    lowering kept for a second compilation."""
    with _lock:
        while len(_memory) > keep:
            _memory.popitem(last=False)
        _lowered.clear()
