"""The ``verify`` command line.

Exit codes: 0 every claim came out as expected and every mutant was refuted (``replay``: the
counterexample still fails; ``cite``: the snippet was written); 1 a verification failed (a claim
refuted, vacuous, unconfirmed or in error, or a mutant survived; ``replay``: the counterexample
no longer fails; ``cite``: the claim did not verify in the run that wrote its certificate); 2
bad input (unknown id, bad or clashing theorem file, bad option, an output location that cannot
be written, a record that is not valid, a theorem file a record names that is missing or
changed); 3 an internal error (set DLVERIFY_DEBUG=1 for the traceback); 130 interrupted
(SIGINT), 143 terminated (SIGTERM). Every error is one line on stderr.

While a command works, the process's standard output (``sys.stdout`` and file descriptor 1) goes
to stderr: what theorem code prints never mixes with the command's own output (tables, JSON).
"""

from __future__ import annotations

import argparse
import contextlib
import os
import signal
import sys
import threading
import time
import warnings
from typing import Any, Iterator, Sequence

EPILOG = """\
examples:
  verify run                                 whole catalogue: symbolic, numeric, mutants, ablation
  verify list                                the catalogue
  verify check patel2016.switch-relu         one theorem's symbolic and numeric faces
  verify check my_theorem.py                 a theorem in your own file
  verify mutants patel2016                   every mutant of every theorem under a prefix
  verify ablate patel2016.render-layer-convnet   drop each assumption in turn and search
  verify replay .dlverify/counterexamples/FILE.json
  verify cite patel2016.render-layer-convnet --format latex   (after a run wrote its certificate)
  verify graph --format dot -o theorems.dot

exit codes: 0 all as expected, 1 a verification failed, 2 bad input, 3 internal error,
130 interrupted, 143 terminated.
"""


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> None:  # one line, not a usage dump
        sys.stderr.write(f"verify: error: {message} (see `verify --help`)\n")
        raise SystemExit(2)


def _positive(name: str, upper: int, lower: int = 1):
    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"{name} must be an integer, got {text!r}") from None
        if not lower <= value <= upper:
            raise argparse.ArgumentTypeError(f"{name} must be between {lower} and {upper}, got {value}")
        return value

    return parse


def _count(name: str, upper: int):
    return _positive(name, upper, lower=0)


def _seed(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"seed must be an integer, got {text!r}") from None
    if not 0 <= value < 2**32:
        raise argparse.ArgumentTypeError(f"seed must be in [0, 2^32), got {value}")
    return value


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(
        prog="verify",
        description="Check theorems of deep-learning theory symbolically (SymPy), numerically (JAX, float64, "
                    "jit+vmap) and by counterexample search (Hypothesis).",
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    from verify import __version__

    parser.add_argument("--version", action="version", version=f"dlverify {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=_Parser)

    search_opts = _Parser(add_help=False)
    g = search_opts.add_argument_group("search")
    g.add_argument("--seed", type=_seed, default=0, help="master seed; every search derives its own (default 0)")
    g.add_argument("--examples", type=_positive("examples", 100_000), default=None,
                   help="batches per search (default: one per structure of the theorem's small scope, a "
                        "quarter more for random structures, at least 10)")
    g.add_argument("--batch", type=_positive("batch", 1_000_000), default=None,
                   help="instances per batch, checked in one jit(vmap) call (default 512)")
    g.add_argument("--budget", type=_positive("budget", 10**9), default=None,
                   help="total instances per search; sets --examples from --batch")
    g.add_argument("--meeting", type=_count("meeting", 10**9), default=None,
                   help="when nothing failed, a claim's search draws further batches over the structures where its "
                        "assumptions held until this many instances met them, within 4,096 batches and 2.5e11 of "
                        "XLA's estimate of their work (default 100,000 unless --examples or --budget is given; 0: none)")
    g.add_argument("--jobs", type=_positive("jobs", 1024), default=None,
                   help="theorems checked at once, in worker processes (default: one per CPU core; 1 for one "
                        "theorem); the results do not depend on it")
    out = _Parser(add_help=False)
    o = out.add_argument_group("output")
    o.add_argument("--json", action="store_true", help="print a JSON report on stdout instead of tables")
    o.add_argument("--out", default=".dlverify/counterexamples", metavar="DIR",
                   help="where counterexample files are written (default .dlverify/counterexamples)")
    o.add_argument("--certificates", metavar="DIR", default=".dlverify/certificates",
                   help="where one JSON certificate per theorem is written (default .dlverify/certificates)")
    o.add_argument("-q", "--quiet", action="store_true", help="no progress display")

    refs_help = "theorem ids, id prefixes (e.g. patel2016) or .py files; default: the whole catalogue"
    p = sub.add_parser("run", parents=[search_opts, out], help="run the whole catalogue (or the given theorems)",
                       description="Symbolic derivation, numeric search, mutants and assumption ablation.")
    p.add_argument("refs", nargs="*", metavar="ID|FILE", help=refs_help)
    p.add_argument("--no-ablate", action="store_true", help="skip assumption ablation")
    p.add_argument("--no-exact", action="store_true",
                   help="skip deciding the symbolic claims with the SMT solver (z3, the `exact` extra)")

    p = sub.add_parser("check", parents=[search_opts, out], help="symbolic and numeric faces of theorems",
                       description="Check the derivation and search for counterexamples to the claim.")
    p.add_argument("refs", nargs="+", metavar="ID|FILE", help="theorem ids, prefixes or .py files")
    p.add_argument("--no-exact", action="store_true",
                   help="skip deciding the symbolic claims with the SMT solver (z3, the `exact` extra)")

    p = sub.add_parser("mutants", parents=[search_opts, out], help="run the wrong variants; all must be refuted")
    p.add_argument("refs", nargs="+", metavar="ID|FILE", help="theorem ids, prefixes or .py files")

    p = sub.add_parser("ablate", parents=[search_opts, out],
                       help="drop each named assumption in turn and search for a counterexample")
    p.add_argument("refs", nargs="+", metavar="ID|FILE", help="theorem ids, prefixes or .py files")
    p.add_argument("--assumption", action="append", metavar="NAME", help="only these assumptions")

    p = sub.add_parser("list", help="list the catalogue")
    p.add_argument("refs", nargs="*", metavar="ID|FILE", help=refs_help)
    p.add_argument("--json", action="store_true", help="JSON on stdout")

    p = sub.add_parser("cite", help="a LaTeX/BibTeX/Markdown snippet for a verified statement, from its certificate")
    p.add_argument("id", metavar="ID", help="theorem id")
    p.add_argument("--format", choices=["latex", "bibtex", "markdown"], default="latex")
    p.add_argument("--certificates", metavar="DIR", default=".dlverify/certificates",
                   help="where `verify run` wrote the certificates (default .dlverify/certificates)")

    p = sub.add_parser("graph", help="the dependency graph of theorems, coloured by the last run")
    p.add_argument("refs", nargs="*", metavar="ID|FILE", help=refs_help)
    p.add_argument("--format", choices=["text", "dot", "svg"], default="text")
    p.add_argument("-o", "--output", metavar="FILE", help="write to FILE instead of stdout (needed for svg)")
    p.add_argument("--certificates", metavar="DIR", default=".dlverify/certificates",
                   help="certificates of the last run (default .dlverify/certificates)")

    p = sub.add_parser("report", help="an HTML report of the last run, with residual charts, from its certificates")
    p.add_argument("-o", "--output", metavar="FILE", default="dlverify-report.html",
                   help="where to write the page (default dlverify-report.html)")
    p.add_argument("--certificates", metavar="DIR", default=".dlverify/certificates",
                   help="certificates of the last run (default .dlverify/certificates)")

    p = sub.add_parser("hunt", help="a long counterexample hunt for one variant, on local processes or Ray",
                       description="Spend a large budget on one variant (the claim, mutant:NAME or ablate:NAME), "
                                   "cut into tasks over the theorem's small scope; resumable with --state. "
                                   "Exit 0 when the variant came out as expected (a theorem's claim survived, "
                                   "a stated non-theorem, a mutant or an ablated claim was refuted).")
    p.add_argument("ref", metavar="ID|FILE", help="a theorem id or a .py file defining one theorem")
    p.add_argument("--variant", default="claim", help="claim (default), mutant:NAME or ablate:NAME")
    p.add_argument("--budget", type=_positive("budget", 10**13), default=10**6, help="instances (default 1,000,000)")
    p.add_argument("--batch", type=_positive("batch", 1 << 20), default=1 << 16,
                   help="instances per batch (65536): one compiled call")
    p.add_argument("--task-batches", type=_positive("task-batches", 100_000), default=8,
                   help="batches per task (8): the unit of work, of progress and of resuming")
    p.add_argument("--seed", type=_seed, default=0, help="the hunt's seed (default 0): it fixes every task")
    w = p.add_mutually_exclusive_group()
    w.add_argument("--workers", type=_positive("workers", 1024), default=1, help="local worker processes (1)")
    w.add_argument("--ray", metavar="ADDRESS", help="a Ray cluster: auto, local, or ray://HOST:PORT (the ray extra)")
    p.add_argument("--state", metavar="DIR", help="record finished tasks here; a hunt started again resumes")
    p.add_argument("--out", default=".dlverify/counterexamples", metavar="DIR", help="counterexample files")
    p.add_argument("--certificates", metavar="DIR", default=".dlverify/certificates",
                   help="where the hunt's certificate is written (default .dlverify/certificates)")
    p.add_argument("-q", "--quiet", action="store_true", help="no progress lines")
    p.add_argument("--json", action="store_true", help="print the certificate (JSON) on stdout")

    p = sub.add_parser("replay", help="re-evaluate a stored counterexample file")
    p.add_argument("file", metavar="FILE", help="a counterexample .json written by a search")
    p.add_argument("--theorem", metavar="FILE.py",
                   help="evaluate against this theorem file instead of the one the record names (for a "
                        "fixed theorem: its content is not checked against the record)")
    p.add_argument("--json", action="store_true", help="JSON on stdout")
    return parser


def _budget(args: argparse.Namespace):
    from verify.engine.search import Budget

    default = Budget()
    batch = args.batch or default.batch
    examples = args.examples
    if args.budget is not None:
        if args.examples is not None:
            from verify.errors import UsageError

            raise UsageError("give --budget or --examples, not both")
        examples = max(1, -(-args.budget // batch))
        batch = min(batch, args.budget)
    return Budget(examples=examples, batch=batch, meeting=args.meeting)


def _fail(message: str) -> int:
    sys.stderr.write(f"verify: error: {' '.join(message.split())}\n")
    return 2


#: the command's own standard output while the process's stdout is routed to stderr (see main)
_stdout: Any = None


def _out() -> Any:
    return _stdout if _stdout is not None else sys.stdout


def _json(value: Any) -> None:
    from verify.records.io import dumps

    _out().write(dumps(value) + "\n")


@contextlib.contextmanager
def _stdout_to_stderr() -> Iterator[None]:
    """Route ``sys.stdout`` and file descriptor 1 to stderr; the command writes through ``_out()``."""
    global _stdout
    sys.stdout.flush()
    python_stdout, saved = sys.stdout, None
    try:
        if python_stdout.fileno() == 1:
            saved = os.dup(1)
    except (AttributeError, OSError, ValueError):  # replaced by a test harness: Python level only
        saved = None
    if saved is not None:
        _stdout = open(saved, "w", encoding=getattr(python_stdout, "encoding", None) or "utf-8",
                       errors="replace", closefd=False)  # noqa: SIM115 - closed (flushed) in the finally below
        sys.stderr.flush()
        os.dup2(2, 1)
    else:
        _stdout = python_stdout
    sys.stdout = sys.stderr
    try:
        yield
    finally:
        with contextlib.suppress(Exception):
            _stdout.flush()
        with contextlib.suppress(Exception):
            sys.stderr.flush()
        sys.stdout = python_stdout
        if saved is not None:
            os.dup2(saved, 1)
            os.close(saved)
        _stdout = None


def _run(args: argparse.Namespace, faces: tuple[str, ...]) -> int:
    from rich.console import Console
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, SpinnerColumn, TextColumn, TimeElapsedColumn

    from verify.records.certificate import write_certificate
    from verify.records.io import prepare_directory
    from verify.registry import select
    from verify.render.terminal import console as make_console
    from verify.render.terminal import print_details, run_json, run_table

    theorems = select(args.refs)
    _settle_heap()
    budget = _budget(args)
    for thm in theorems:
        unknown = set(getattr(args, "assumption", None) or ()) - {a.name for a in thm.assumptions}
        if unknown:
            return _fail(f"theorem {thm.id} has no assumption {sorted(unknown)[0]!r}")
    prepare_directory(args.out, "--out")  # before any work: a location that cannot be written is refused now
    prepare_directory(args.certificates, "--certificates")
    console = make_console(stderr=args.json, file=None if args.json else _out())
    certs: list[dict[str, Any]] = []
    quiet = args.quiet or not Console(stderr=True).is_terminal
    with Progress(SpinnerColumn(), TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(),
                  TextColumn("{task.fields[instances]:,} instances"), TimeElapsedColumn(),
                  console=Console(stderr=True), disable=quiet, transient=True) as progress:
        task = progress.add_task("starting", total=len(theorems), instances=0)
        counted = [0]

        def tick(label: str, n: int, tid: str = "") -> None:
            counted[0] += n
            progress.update(task, description=f"{tid} {label}", instances=counted[0])

        jobs = min(args.jobs or (os.cpu_count() or 1), len(theorems)) if len(theorems) > 1 else 1
        for cert in _certificates(theorems, args, faces, budget, jobs, tick):
            certs.append(cert)
            write_certificate(cert, args.certificates)
            progress.advance(task)
            if quiet and not args.json and not args.quiet:
                print(f"checked {cert['theorem']['id']}: {'ok' if cert['ok'] else 'FAILED'}", file=sys.stderr,
                      flush=True)
    order = {t.id: i for i, t in enumerate(theorems)}
    certs.sort(key=lambda c: order.get(c["theorem"]["id"], len(order)))
    if args.json:
        _json(run_json(certs))
    else:
        console.print(run_table(certs))
        print_details(console, certs)
        bad = [c for c in certs if not c["ok"]]
        if "exact" in faces:
            from verify.exact.decide import MISSING_Z3, z3

            if z3 is None:  # an optional part: say what was skipped
                console.print(f"exact face skipped: {MISSING_Z3}", highlight=False, markup=False)
        summary = f"{len(certs)} theorems: {len(certs) - len(bad)} ok, {len(bad)} failed"
        console.print(f"[{'red' if bad else 'green'}]{summary}[/]")
    return 0 if all(c["ok"] for c in certs) else 1


#: whether this process is the ``verify`` command's own (its entry point, or a worker it started),
#: not a Python program that calls :func:`main`
_OWN_PROCESS = False


def _settle_heap() -> None:
    """Move what the imports made (JAX, SymPy, the theorem modules: objects that live as long as the
    process) out of the garbage collector's view (:func:`gc.freeze`, without collecting first: the
    little garbage the imports left is kept), so that a collection scans only what the run makes:
    Hypothesis collects once when a search first runs, and with SymPy and JAX loaded that took
    0.07 s of a ``verify check``. Only in the command's own processes: a program that calls
    :func:`main` keeps its collector as it is."""
    if _OWN_PROCESS:
        import gc

        gc.freeze()


def _check_one(ref: str, faces: tuple[str, ...], budget: Any, seed: int, out: str,
               assumptions: list[str] | None) -> tuple[dict[str, Any], float]:
    """One theorem's certificate, and the seconds it took (in a worker process: ``ref`` is an id
    or ``ID@FILE``)."""
    from verify.engine.runner import run_theorem
    from verify.registry import resolve

    global _OWN_PROCESS
    _OWN_PROCESS = True  # a worker process, started by the command
    t0 = time.perf_counter()
    theorem_id, _, where = ref.partition("@")
    thm = resolve(where, theorem_id) if where else resolve(theorem_id)
    _settle_heap()
    rep = run_theorem(thm, faces=faces, budget=budget, seed=seed, out_dir=out)
    if assumptions:
        rep.ablations = [a for a in rep.ablations if a.assumption in assumptions]
    return rep.certificate(), time.perf_counter() - t0


def _longest_first(theorems: list[Any]) -> list[int]:
    """The order in which to hand theorems to workers: the longest first (by what each took when
    it last ran; one never run first of all, by its number of mutants and assumptions), so that
    no worker starts a long theorem when the others are nearly done. Results do not depend on it."""
    from verify.engine.programs import durations

    took = durations()

    def cost(i: int) -> tuple[bool, float, int]:
        t = theorems[i]
        return (t.id not in took, took.get(t.id, 0.0), len(t.mutants) + len(t.assumptions))
    return sorted(range(len(theorems)), key=cost, reverse=True)


def _certificates(theorems: list[Any], args: argparse.Namespace, faces: tuple[str, ...], budget: Any, jobs: int,
                  tick: Any) -> Iterator[dict[str, Any]]:
    """The theorems' certificates: run here, in the order given, or by ``jobs`` worker processes,
    as each is done (each theorem's run depends only on the seed, so the results are the same
    either way; the caller puts them back in the order given)."""
    from verify.engine.programs import remember_durations
    from verify.engine.runner import run_theorem
    from verify.hunt import reference

    assumptions = getattr(args, "assumption", None)
    took: dict[str, float] = {}
    if jobs <= 1:
        for thm in theorems:
            t0 = time.perf_counter()
            rep = run_theorem(thm, faces=faces, budget=budget, seed=args.seed, out_dir=args.out,
                              progress=lambda label, n, tid=thm.id: tick(label, n, tid))
            if assumptions:
                rep.ablations = [a for a in rep.ablations if a.assumption in assumptions]
            took[thm.id] = time.perf_counter() - t0
            yield rep.certificate()
        remember_durations(took)
        return
    import multiprocessing as mp
    from concurrent.futures import ProcessPoolExecutor, as_completed

    pool = ProcessPoolExecutor(jobs, mp_context=mp.get_context("spawn"))
    try:
        futures = {pool.submit(_check_one, reference(theorems[i]), faces, budget, args.seed, args.out,
                               assumptions): theorems[i] for i in _longest_first(theorems)}
        for f in as_completed(futures):  # each as soon as it is done: nothing waits on a slower one
            cert, took[futures[f].id] = f.result()
            tick("done", 0, futures[f].id)
            yield cert
        remember_durations(took)
    except BaseException:  # an interrupt or an error: stop the workers now, not after their theorems
        for p in list((getattr(pool, "_processes", None) or {}).values()):
            p.terminate()
        pool.shutdown(wait=False, cancel_futures=True)
        raise
    pool.shutdown()


def _list(args: argparse.Namespace) -> int:
    from verify import index
    from verify.render.terminal import console, list_table

    rows = index.cached()
    rows = index.select_rows(rows, args.refs) if rows is not None else None
    if rows is None:  # no current index, a file, or a ref the index does not know: import
        from verify.registry import select

        rows = [index.row(t) for t in select(args.refs)]
    if args.json:
        _json(rows)
    else:
        console(file=_out()).print(list_table(rows))
    return 0


def _hunt(args: argparse.Namespace) -> int:
    from verify.errors import UsageError
    from verify.hunt import hunt, reference
    from verify.records.certificate import write_certificate
    from verify.records.io import prepare_directory
    from verify.registry import resolve

    thm = resolve(args.ref)
    kind, _, name = args.variant.partition(":")
    if kind == "mutant":
        thm.mutant(name)
    elif kind == "ablate":
        thm.assumption(name)
    elif args.variant != "claim":
        raise UsageError(f"unknown variant {args.variant!r}: give claim, mutant:NAME or ablate:NAME")
    for path, option in ((args.out, "--out"), (args.certificates, "--certificates"), (args.state, "--state")):
        if path:
            prepare_directory(path, option)

    def progress(p: dict) -> None:
        if not args.quiet:
            print(f"hunt {thm.id} {args.variant}: {p['tasks_done']}/{p['tasks']} tasks, {p['instances']:,} instances, "
                  f"{p['per_second']:,.0f}/s, ETA {p['eta_s']:.0f} s", file=sys.stderr, flush=True)

    try:
        res = hunt(thm, reference(thm), variant=args.variant, instances=args.budget, batch=args.batch,
                   task_batches=args.task_batches, seed=args.seed, workers=args.workers, ray=args.ray,
                   state=args.state, progress=progress)
    except ValueError as exc:
        raise UsageError(str(exc)) from None
    if res.counterexample is not None:
        res.counterexample.save(args.out)
    cert = res.certificate()
    path = write_certificate(cert, args.certificates)
    if args.json:
        _json(cert)
    else:
        out, h, run, s = _out(), res.hunt, res.hunt["run"], res.search
        print(f"{thm.id} {args.variant}: {s.verdict} on {s.drawn:,} instances "
              f"({s.satisfied:,} meeting the assumptions) in {h['tasks_counted']}/{h['tasks']} tasks"
              + (f", {run['tasks_resumed']} resumed" if run["tasks_resumed"] else "")
              + f", {run['seconds']:.1f} s ({run['instances_per_second']:,.0f}/s)", file=out)
        if s.counterexample is not None:
            print(f"  witness at {s.counterexample.structure}, found by {s.counterexample.shrink['found_by']}; "
                  f"{s.counterexample.established}\n  replay: {s.counterexample.replay_command()}", file=out)
        if s.note:
            print(f"  {s.note}", file=out)
        for problem in cert["problems"]:
            print(f"  problem: {problem}", file=out)
        print(f"  certificate: {path} ({'ok' if cert['ok'] else 'not ok'}; {h['not_checked']})", file=out)
    return 0 if cert["ok"] else 1


def _replay(args: argparse.Namespace) -> int:
    from verify.engine.replay import replay
    from verify.records.counterexample import Counterexample
    from verify.registry import theorem_of
    from verify.render.terminal import console, replay_table

    cx = Counterexample.load(args.file)
    result = replay(cx, theorem_of(cx, theorem_file=args.theorem))
    if args.json:
        _json(result.as_dict())
    else:
        console(file=_out()).print(replay_table(result))
    return 0 if result.reproduced else 1


def _cite(args: argparse.Namespace) -> int:
    from verify.registry import current_statement_hash
    from verify.render.cite import cite

    _out().write(cite(args.id, args.format, args.certificates, current_statement_hash))
    return 0


def _graph(args: argparse.Namespace) -> int:
    import shutil
    import subprocess

    from verify.errors import UsageError
    from verify.records.io import prepare_file, write_atomic
    from verify.registry import select
    from verify.render.graph import to_dot, to_text

    if args.format == "svg" and not args.output:
        raise UsageError("--format svg needs -o FILE")
    if args.output:
        prepare_file(args.output, "-o")
    theorems = select(args.refs)
    if args.format == "text":
        text = to_text(theorems, args.certificates)
    else:
        text = to_dot(theorems, args.certificates)
    if args.format == "svg":
        if shutil.which("dot") is None:
            raise UsageError("Graphviz `dot` is not installed: use --format dot and render it elsewhere")
        done = subprocess.run(["dot", "-Tsvg"], input=text.encode(), capture_output=True, check=False)
        if done.returncode != 0:
            raise UsageError(f"Graphviz `dot` failed: {done.stderr.decode(errors='replace').strip()[:200]}")
        write_atomic(args.output, done.stdout)
        return 0
    if args.output:
        write_atomic(args.output, text)
    else:
        _out().write(text)
    return 0


def _report(args: argparse.Namespace) -> int:
    from verify.errors import UsageError
    from verify.records.certificate import load_certificates
    from verify.records.io import prepare_file, write_atomic
    from verify.render.html import KATEX_ENV, katex_dir, render

    prepare_file(args.output, "-o")
    certs = load_certificates(args.certificates)  # an unreadable certificate is an error naming it
    if not certs:
        raise UsageError(f"no certificates in {args.certificates}: run `verify run` first")
    katex = katex_dir()
    write_atomic(args.output, render(certs, katex=katex))
    math = (f"statements typeset by KaTeX from {katex}" if katex else
            f"KaTeX not found (set {KATEX_ENV}): statements show their LaTeX source")
    print(f"wrote {args.output} ({len(certs)} theorems; {math})", file=_out())
    return 0


def _dispatch(args: argparse.Namespace) -> int:
    if args.command == "run":
        faces: tuple[str, ...] = ("symbolic", "numeric", "mutants") + (() if args.no_ablate else ("ablate",))
        return _run(args, faces + (() if args.no_exact else ("exact",)))
    if args.command == "check":
        return _run(args, ("symbolic", "numeric") + (() if args.no_exact else ("exact",)))
    if args.command == "mutants":
        return _run(args, ("mutants",))
    if args.command == "ablate":
        return _run(args, ("ablate",))
    if args.command == "hunt":
        return _hunt(args)
    if args.command == "list":
        return _list(args)
    if args.command == "replay":
        return _replay(args)
    if args.command == "cite":
        return _cite(args)
    if args.command == "graph":
        return _graph(args)
    if args.command == "report":
        return _report(args)
    raise AssertionError(args.command)


#: the commands that evaluate theorems (and so need JAX)
_EVALUATING = {"run", "check", "mutants", "ablate", "replay", "hunt"}


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.command is None:
        parser.print_help()
        return 2
    from verify.config import float64
    from verify.errors import NotVerified, VerifyError
    from verify.guard import describe_exit, exits_guarded

    previous = _on_sigterm()
    try:
        with warnings.catch_warnings(), exits_guarded(), _stdout_to_stderr():
            warnings.showwarning = _one_line_warning  # e.g. JAX on an unreadable cache entry: it recompiles
            # commands that evaluate run in dlverify's JAX settings; listing and rendering never
            # import JAX (the engine's entry points enter these settings themselves as well)
            with float64() if args.command in _EVALUATING else contextlib.nullcontext():
                return _dispatch(args)
    except NotVerified as exc:
        sys.stderr.write(f"verify: {exc}\n")
        return 1
    except VerifyError as exc:
        return _fail(str(exc))
    except SystemExit as exc:  # theorem code called sys.exit / os._exit while it ran
        return _fail(f"theorem code called {describe_exit(exc)} while dlverify was running it: "
                     "a theorem must not end the process")
    except KeyboardInterrupt:
        sys.stderr.write("verify: interrupted\n")
        return 130
    except _Terminated:
        sys.stderr.write("verify: terminated\n")
        return 143
    except Exception as exc:  # noqa: BLE001 - one line unless asked for the traceback
        if os.environ.get("DLVERIFY_DEBUG"):
            raise
        why = " ".join(f"{type(exc).__name__}: {exc}".split())[:500]
        sys.stderr.write(f"verify: internal error: {why} (DLVERIFY_DEBUG=1 for the traceback)\n")
        return 3
    finally:
        if previous is not None:
            signal.signal(signal.SIGTERM, previous)


def _one_line_warning(message: Any, category: type, filename: str, lineno: int, file: Any = None,
                      line: str | None = None) -> None:
    sys.stderr.write(f"verify: warning: {' '.join(str(message).split())[:500]}\n")


class _Terminated(BaseException):
    """SIGTERM, raised where the process is, so that files being written are cleaned up."""


def _on_sigterm() -> Any:
    """Turn SIGTERM into :class:`_Terminated` (exit 143); returns the previous handler."""
    if threading.current_thread() is not threading.main_thread():
        return None

    def handler(signum: int, frame: Any) -> None:
        raise _Terminated

    return signal.signal(signal.SIGTERM, handler)


def entry() -> None:
    global _OWN_PROCESS
    _OWN_PROCESS = True
    raise SystemExit(main())


if __name__ == "__main__":
    entry()
