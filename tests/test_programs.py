"""Compiled programs and derivation checks kept on disk (verify.engine.programs): a warm run
loads what a cold run compiled and checked, and reaches the same certificate; a damaged file is compiled anew; programs of theorems
whose code the engine cannot pin down by hashing (users' files) never go to disk."""

from __future__ import annotations

import numpy as np
import pytest

from verify.engine import programs
from verify.engine.evaluate import release_compiled
from verify.engine.runner import DEFAULT_FACES, run_theorem
from verify.engine.search import Budget
from verify.registry import get, load_file

TINY = Budget(examples=4, batch=64)


def _timeless(value):
    if isinstance(value, dict):
        return {k: _timeless(v) for k, v in value.items() if k not in ("created", "seconds")}
    if isinstance(value, list):
        return [_timeless(v) for v in value]
    return value


@pytest.fixture(autouse=True)
def _fill_the_cache(monkeypatch):
    """These tests check the default policy: a program not kept yet is compiled anew and kept."""
    monkeypatch.setattr(programs, "REUSE_XLA_CACHE", False)


def _run(theorem, cache, monkeypatch, faces=DEFAULT_FACES, budget=TINY):
    monkeypatch.setenv("DLVERIFY_XLA_CACHE", str(cache))
    release_compiled()
    programs.release()  # nothing in memory: every program comes from disk or is compiled now
    before = dict(programs.stats)
    cert = run_theorem(theorem, budget=budget, seed=3, faces=faces).certificate()
    return _timeless(cert), {k: programs.stats[k] - before.get(k, 0) for k in programs.stats}


def test_a_warm_run_loads_every_program_and_certifies_the_same(tmp_path, monkeypatch):
    thm = get("patel2016.switch-relu")
    cold, made = _run(thm, tmp_path, monkeypatch)
    assert made.get("compiled", 0) > 0 and made.get("saved", 0) == made["compiled"], made
    files = sorted((tmp_path / "programs").glob("*.bin"))
    assert len(files) == made["saved"]
    warm, used = _run(thm, tmp_path, monkeypatch)
    assert used.get("compiled", 0) == 0 and used.get("loaded", 0) == made["compiled"], used
    checked = len(thm.derivations) + sum(m.derivation is not None for m in thm.mutants)
    # SymPy's checks and the cross-checks of each checked claim with its property, read back
    assert checked and used.get("results loaded", 0) == 2 * checked, used
    assert warm == cold and cold["ok"]
    off, _ = _run(thm, "off", monkeypatch)  # no cache at all: the same certificate
    assert off == cold


def test_a_warm_run_reads_the_cross_checks_back_and_a_new_seed_compares_anew(tmp_path, monkeypatch):
    from verify.engine import runner

    thm = get("patel2016.switch-relu")
    cold, _ = _run(thm, tmp_path, monkeypatch)
    real = runner.crosscheck
    monkeypatch.setattr(runner, "crosscheck", lambda *a, **k: pytest.fail("a kept cross-check was compared anew"))
    warm, _ = _run(thm, tmp_path, monkeypatch)
    assert warm == cold
    assert [c["crosscheck"]["status"] for c in cold["symbolic"]["claims"]] == ["agrees"] * len(thm.derivations)
    calls = []
    monkeypatch.setattr(runner, "crosscheck", lambda *a, **k: calls.append(k["seed"]) or real(*a, **k))
    monkeypatch.setenv("DLVERIFY_XLA_CACHE", str(tmp_path))
    run_theorem(thm, budget=TINY, seed=4)  # another seed: other instances, so compared anew
    assert len(calls) == len(thm.derivations) + sum(m.derivation is not None for m in thm.mutants)


def test_the_top_up_stops_at_the_same_batch_on_a_cold_and_a_warm_cache(tmp_path, monkeypatch):
    """The top-up's work is XLA's estimate of the compiled program: the same read back from disk."""
    budget = Budget(examples=4, batch=64, meeting=10**6, topup_work=4e6)
    thm = get("patel2016.switch-relu")
    cold, _ = _run(thm, tmp_path, monkeypatch, faces=("numeric",), budget=budget)
    warm, used = _run(thm, tmp_path, monkeypatch, faces=("numeric",), budget=budget)
    assert used.get("compiled", 0) == 0
    topup = cold["numeric"]["topup"]
    assert 0 < topup["batches"] < 256 and not topup["reached"] and topup["work"] <= 4e6  # the work bound stopped it
    assert warm == cold


def test_a_damaged_program_file_is_compiled_anew(tmp_path, monkeypatch):
    thm = get("patel2016.switch-relu")
    cold, _ = _run(thm, tmp_path, monkeypatch)
    for f in (tmp_path / "programs").glob("*.bin"):
        f.write_bytes(f.read_bytes()[:40])
    again, used = _run(thm, tmp_path, monkeypatch)
    assert used.get("unreadable", 0) > 0 and used.get("compiled", 0) == used["unreadable"], used
    assert again == cold


def test_a_users_theorem_is_compiled_in_memory_only(tmp_path, monkeypatch, data):
    (thm,) = [t for t in load_file(data / "true_theorem.py")]
    assert programs.name_of(thm.property) is None
    _, made = _run(thm, tmp_path, monkeypatch)
    assert made.get("compiled", 0) > 0
    engine_only = made.get("saved", 0)  # the uniform pools are the engine's own programs
    assert len(list((tmp_path / "programs").glob("*.bin"))) == engine_only < made["compiled"]


@pytest.mark.parametrize("part", [lambda: None, (1, lambda: None), object()])
def test_a_program_with_an_unnamed_part_has_no_name(part):
    assert programs.name_of("fused", part) is None
    assert programs.name_of("fused", 1, ("a", 2.0), None) is not None


def test_a_modules_programs_are_named_by_its_own_sources_and_what_it_imports():
    """deep imports layer: editing layer renames deep's programs; editing deep leaves layer's."""
    deep = programs._module_sources("theorems.patel2016.deep")
    layer = programs._module_sources("theorems.patel2016.layer")
    backprop = programs._module_sources("theorems.koo.backprop")
    assert len({deep, layer, backprop}) == 3
    seen = {}

    def spy(name):
        seen[name] = True
        return real(name)

    import importlib.util

    real = importlib.util.find_spec
    programs._module_sources.cache_clear()
    try:
        importlib.util.find_spec = spy
        programs._module_sources("theorems.patel2016.deep")
    finally:
        importlib.util.find_spec = real
        programs._module_sources.cache_clear()
    assert {"theorems.patel2016.deep", "theorems.patel2016.layer", "theorems.sources", "theorems"} <= set(seen)
    assert "theorems.koo.backprop" not in seen


@pytest.mark.skipif(__import__("importlib").util.find_spec("z3") is None, reason="the exact extra (z3) is not installed")
def test_a_warm_run_reads_back_what_z3_decided(tmp_path, monkeypatch):
    thm = get("patel2016.switch-relu")
    faces = DEFAULT_FACES + ("exact",)
    cold, _ = _run(thm, tmp_path, monkeypatch, faces)
    decided = [c["decided"] for c in cold["symbolic"]["claims"]]
    assert any(d and d["status"] == "decided" and d["sizes"] for d in decided), decided
    warm, used = _run(thm, tmp_path, monkeypatch, faces)
    checked = len(thm.derivations) + sum(m.derivation is not None for m in thm.mutants)
    # SymPy's checks, the cross-checks and z3's decisions
    assert used.get("results loaded", 0) == 2 * checked + len(thm.derivations), used
    assert warm == cold


def test_a_kept_sympy_expression_reads_back_exactly_as_it_was(tmp_path, monkeypatch):
    """A kept expression (a cross-check side at explicit sizes) is rebuilt as the very same tree."""
    import sympy as sp

    from verify import MaxOver

    monkeypatch.setenv("DLVERIFY_XLA_CACHE", str(tmp_path))
    x, i = sp.IndexedBase("x", real=True), sp.Symbol("i", integer=True)
    b = sp.IndexedBase("b")
    e = MaxOver(sp.Sum(b[i] * x[i] + sp.Max(x[i], 0) ** 2, (i, 0, 3)), (b, [0, 1])) + sp.Rational(1, 3) * sp.exp(x[0])
    name = programs.content_name("test", sp.srepr(e))
    first = programs.kept(name, lambda: e)
    again = programs.kept(name, lambda: pytest.fail("not read back"))
    assert sp.srepr(again) == sp.srepr(first) and again == e


def test_reusing_xla_s_cache_keeps_only_what_xla_compiled_and_certifies_the_same(tmp_path, monkeypatch):
    """With XLA's cache reused, a program XLA already held is not kept here (its executable would
    not serialise); every other one is; the certificate is the same."""
    thm = get("patel2016.switch-relu")
    kept, _ = _run(thm, tmp_path / "a", monkeypatch)  # XLA's cache (the session's) now holds every program
    monkeypatch.setattr(programs, "REUSE_XLA_CACHE", True)
    reused, made = _run(thm, tmp_path / "b", monkeypatch)
    assert made.get("compiled", 0) == made.get("from XLA's cache", 0) + made.get("saved", 0), made
    warm, used = _run(thm, tmp_path / "b", monkeypatch)
    assert used.get("loaded", 0) == made.get("saved", 0) and used.get("compiled", 0) == made.get("from XLA's cache", 0)
    assert kept == reused == warm


def test_programs_are_compiled_with_the_engine_s_options_and_without_those_jaxlib_lacks(monkeypatch):
    import jax.numpy as jnp

    def twice(static, x):
        return static * jnp.sin(x)

    def options_given(fake: dict, quick: dict) -> tuple[dict, dict]:
        monkeypatch.setattr(programs, "COMPILER_OPTIONS", dict(fake))
        monkeypatch.setattr(programs, "QUICK_OPTIONS", dict(quick))
        programs.release()
        for optimise in (True, False):
            out = programs.run(None, twice, 2.0, jnp.ones(3), optimise=optimise)
            assert float(out[0]) == pytest.approx(2 * 0.8414709848078965)
        return programs.COMPILER_OPTIONS, programs.QUICK_OPTIONS

    engine, quick = dict(programs.COMPILER_OPTIONS), dict(programs.QUICK_OPTIONS)
    assert engine and quick and options_given(engine, quick) == (engine, quick), \
        "this jaxlib lacks the engine's compiler options"
    # an option this jaxlib does not know: compiled without it, and it is never tried again; the others stay
    assert options_given({"xla_cpu_no_such_option": False}, quick) == ({}, quick)
    assert options_given(engine, quick | {"xla_cpu_no_such_option": False}) == (engine, quick)
    programs.release()
    # the options name the programs kept on disk: another set of options is another program
    monkeypatch.setattr(programs, "COMPILER_OPTIONS", engine)
    with_options = programs._environment()
    monkeypatch.setattr(programs, "COMPILER_OPTIONS", {})
    assert programs._environment() != with_options
    monkeypatch.setattr(programs, "COMPILER_OPTIONS", engine)
    monkeypatch.setattr(programs, "QUICK_OPTIONS", {})
    assert programs._environment() != with_options


def test_the_quick_and_the_optimised_program_are_two_programs_with_one_estimate_of_work():
    """A structure's batches move to the optimised program by XLA's estimate of their work
    (verify.engine.search.OPTIMISE_AFTER): the estimate must not depend on which one was compiled.
    The second is compiled from the first one's lowering."""
    import jax.numpy as jnp

    def work(static, x):
        return jnp.sum(jnp.tanh(x @ x.T) * static, axis=1)

    x = jnp.linspace(-1.0, 1.0, 48).reshape(8, 6)
    programs.release()
    lowered = programs.stats["lowered"]
    quick = programs._program(None, work, 0.5, (x,), False)
    optimised = programs._program(None, work, 0.5, (x,), True)
    assert quick is not optimised
    assert programs.stats["lowered"] == lowered + 1  # traced and lowered once, compiled twice
    assert programs._program(None, work, 0.5, (x,), False) is quick  # each is compiled once
    estimates = [p.cost_analysis() for p in (quick, optimised)]
    estimates = [e[0] if isinstance(e, (list, tuple)) else e for e in estimates]
    assert estimates[0]["flops"] == estimates[1]["flops"] > 0
    assert estimates[0].get("bytes accessed") == estimates[1].get("bytes accessed")
    # the same float64 arithmetic: equal up to rounding (an add contracted into a multiply, say)
    np.testing.assert_allclose(np.asarray(quick(x)), np.asarray(optimised(x)), rtol=1e-14, atol=0)


def test_a_structure_moves_to_the_optimised_program_after_its_share_of_work(monkeypatch):
    """BatchStore.evaluate: quick programs until a structure's batches come to OPTIMISE_AFTER of XLA's
    estimate, optimised after; the same batch gives the same outputs either way, up to rounding."""
    from verify.engine import search as S
    from verify.engine.scope import small_scope
    from verify.values import Structure

    thm = get("patel2016.switch-relu")
    store = S.BatchStore(thm, {"claim": thm.property}, 64)
    s = Structure(small_scope(thm)[0][0])
    pools = store.pools(s, 1)
    per_batch = store.cost(s, pools)
    assert per_batch and per_batch > 0
    monkeypatch.setattr(S, "OPTIMISE_AFTER", 2 * per_batch)

    def optimised_programs() -> int:
        return sum(1 for key in programs._memory if key[1] == s and key[3])

    programs.release()
    outs = [store.evaluate(s, pools) for _ in range(3)]
    assert store.work[s] == 3 * per_batch
    assert optimised_programs() == 2  # the third batch: the sampler's program and the property's, optimised
    for k in ("ratio", "absres", "score"):
        np.testing.assert_allclose(outs[2][k], outs[0][k], rtol=1e-12, atol=0)
    np.testing.assert_array_equal(outs[2]["holds"], outs[0]["holds"])
    programs.release()
    fresh = S.BatchStore(thm, {"claim": thm.property}, 64)
    fresh.evaluate(s, pools)
    fresh.evaluate(s, pools)
    assert optimised_programs() == 0  # two batches' work is not past the threshold yet


def test_a_heavy_batch_is_evaluated_in_chunks_by_its_optimised_programs(monkeypatch):
    """Where XLA's estimate of a batch's bytes accessed passes CHUNK_BYTES, the optimised programs
    (the sampler's and the property's) run over the batch a chunk at a time: the same instances
    and the same outputs as the quick programs that ran it whole, up to rounding."""
    from verify.engine import evaluate as ev
    from verify.engine import search as S
    from verify.engine.scope import small_scope
    from verify.values import Structure

    thm = get("tian2018.thm5.bn-energy")
    store = S.BatchStore(thm, {"claim": thm.property, **{f"mutant:{m.name}": m.property for m in thm.mutants}}, 64)
    s = Structure(small_scope(thm)[0][-1])
    pools = store.pools(s, 1)
    programs.release()
    whole = store.evaluate(s, pools)
    xs_whole = {k: np.asarray(v) for k, v in ev._draw(thm.sample, s, pools).items()}
    monkeypatch.setattr(S, "OPTIMISE_AFTER", 0.0)
    whole_bytes = programs.analysis(*ev._sampler(thm.sample), s, pools)["bytes"]
    monkeypatch.setattr(ev, "CHUNK_BYTES", whole_bytes / 16)  # the sampler's batch in 16 chunks of 4
    chunked = store.evaluate(s, pools)
    xs_chunked = {k: np.asarray(v) for k, v in ev._draw(thm.sample, s, pools, optimise=True).items()}
    statics = {key[1] for key in programs._memory if key[3]}
    assert any(st[0] == s and st[1] < 64 for st in statics if isinstance(st, tuple)) and s not in statics
    assert (s, 4) in statics  # the sampler's: both optimised programs run in chunks, none whole
    for k in xs_whole:
        np.testing.assert_allclose(xs_chunked[k], xs_whole[k], rtol=1e-13, atol=1e-300)
    # a ratio is a residual in units of its tolerance: where the claim holds it is rounding noise
    # (about 1e-6 here), which fusing the operations otherwise moves; a mutant's are far from 0
    np.testing.assert_allclose(chunked["ratio"], whole["ratio"], rtol=1e-9, atol=1e-4)
    assert (chunked["ratio"][1:] > 1).any()  # the mutants fail on this batch, chunked as whole
    for k in ("finite", "holds", "trivial"):
        np.testing.assert_array_equal(chunked[k], whole[k])
    programs.release()


def test_chunk_sizes_follow_the_estimate_alone():
    """A batch within CHUNK_BYTES runs whole; past it, in chunks of the largest power of two within
    CHUNK_BYTES that divides the batch. map_instances gives vmap's outputs in every case, empty
    outputs included."""
    import jax
    import jax.numpy as jnp

    from verify.engine.evaluate import CHUNK_BYTES, chunk_size, map_instances

    assert chunk_size(CHUNK_BYTES / 512, 512) == 512
    assert chunk_size(0.0, 512) == 512
    assert chunk_size(CHUNK_BYTES / 8, 512) == 8
    assert chunk_size(CHUNK_BYTES / 10, 512) == 8  # the power of two below
    assert chunk_size(CHUNK_BYTES / 8, 520) == 8
    assert chunk_size(CHUNK_BYTES / 8, 12) == 4  # the largest power of two within it that divides 12
    assert chunk_size(CHUNK_BYTES / 8, 8) == 8
    assert chunk_size(2 * CHUNK_BYTES, 512) == 1

    def f(x):
        return {"sum": jnp.sum(jnp.sin(x["a"])), "rows": x["a"] * 2.0, "none": jnp.zeros((0,), dtype=bool)}

    xs = {"a": jnp.linspace(-3.0, 3.0, 60).reshape(12, 5)}
    want = jax.vmap(f)(xs)
    for chunk in (None, 1, 2, 3, 4, 6, 12, 24):
        got = jax.jit(lambda v, c=chunk: map_instances(f, v, c))(xs)
        for k in want:
            assert got[k].shape == want[k].shape
            np.testing.assert_allclose(np.asarray(got[k]), np.asarray(want[k]), rtol=1e-15, atol=0)
