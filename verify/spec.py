"""The theorem contract: what a theorem module declares.

A theorem is a plain, frozen object. The engine reads it; it never reaches back into the
module that defined it. Construction validates the object, so a malformed theorem fails at
import with a one-line :class:`TheoremError` rather than deep inside a run.
"""

from __future__ import annotations

import hashlib
import json
import math
import re
import sys
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Callable, Mapping, Sequence

from hypothesis.strategies import SearchStrategy

from verify.errors import TheoremError

if TYPE_CHECKING:
    from verify.symbolic import Derivation

ID_PATTERN = re.compile(r"^[a-z0-9][a-z0-9_-]*(\.[a-z0-9][a-z0-9_-]*)+$")
NAME_PATTERN = re.compile(r"^[a-z][a-z0-9_]*$")
#: ids and names become file names (``ID--ablate-NAME--HASH.json``), which most file systems cap at 255 bytes
MAX_ID_LENGTH = 128
MAX_NAME_LENGTH = 64

#: ``property(s, x) -> Residual | dict[str, Residual]`` for one instance ``x`` of structure ``s``
Property = Callable[[Any, Any], Any]
#: ``sample(rng, s) -> dict of arrays``: one instance from a :class:`verify.Rng` (the engine vmaps it)
Sampler = Callable[[Any, Any], Any]


@dataclass(frozen=True)
class Tolerance:
    """A residual ``r`` with cancelling-term size ``scale`` passes iff
    ``|r| <= atol + rtol * scale``. ``reason`` says why these numbers."""

    atol: float
    rtol: float
    reason: str

    def __post_init__(self) -> None:
        for name in ("atol", "rtol"):
            v = getattr(self, name)
            if isinstance(v, bool) or not isinstance(v, (int, float)):
                raise TheoremError(f"tolerance {name} must be a number, got {type(v).__name__}")
        if not (math.isfinite(self.atol) and math.isfinite(self.rtol)):
            raise TheoremError(f"tolerance must be finite, got atol={self.atol}, rtol={self.rtol}: "
                               "an infinite tolerance accepts every residual")
        if not (self.atol >= 0 and self.rtol >= 0):
            raise TheoremError(f"tolerance must be non-negative, got atol={self.atol}, rtol={self.rtol}")
        if not isinstance(self.reason, str):
            raise TheoremError("every tolerance needs a reason (a string)")
        if not self.reason.strip():
            raise TheoremError("every tolerance needs a reason")

    def bound(self, scale: Any) -> Any:
        return self.atol + self.rtol * scale


@dataclass(frozen=True)
class Assumption:
    """A named hypothesis of the theorem, checkable on one instance.

    ``holds(s, x)`` returns a boolean (written over ``xp``, vmappable). ``reason`` explains any
    tolerance inside the predicate.
    """

    name: str
    description: str
    holds: Callable[[Any, Any], Any]
    reason: str = "exact predicate"

    def __post_init__(self) -> None:
        if not isinstance(self.name, str) or not NAME_PATTERN.match(self.name):
            raise TheoremError(f"assumption name {self.name!r} must be snake_case")
        if len(self.name) > MAX_NAME_LENGTH:
            raise TheoremError(f"assumption name {self.name[:20]!r}... is longer than {MAX_NAME_LENGTH} characters")
        if not callable(self.holds):
            raise TheoremError(f"assumption {self.name!r}: holds must be callable")


@dataclass(frozen=True)
class Regime:
    """A regime in which the claim holds for a trivial reason (all gates open, a lossless-equivalent
    teacher, windows of one position, ...), checkable on one instance like an assumption.

    Instances in a trivial regime still count as tested, but a claim expected true is
    ``confirmed`` only with at least ``Theorem.min_nontrivial`` instances outside every regime;
    below that its verdict is ``thin`` and names the regime that took the draws.
    """

    name: str
    description: str
    holds: Callable[[Any, Any], Any]

    def __post_init__(self) -> None:
        if not isinstance(self.name, str) or not NAME_PATTERN.match(self.name):
            raise TheoremError(f"regime name {self.name!r} must be snake_case")
        if not callable(self.holds):
            raise TheoremError(f"regime {self.name!r}: holds must be callable")


@dataclass(frozen=True)
class Example:
    """An instance every search of the theorem runs first (the claim, each mutant, each ablation),
    as Hypothesis runs a test's ``@example``: the ``structure`` and every array the sampler draws
    for it (``values``: name -> number or nested list, shaped as the sampler's). A failing example
    is the search's counterexample. ``note`` says why it is there (a known hard case, a past bug)."""

    structure: Mapping[str, Any]
    values: Mapping[str, Any]
    note: str = ""

    def __post_init__(self) -> None:
        if not isinstance(self.structure, Mapping) or not all(isinstance(k, str) for k in self.structure):
            raise TheoremError(f"example structure must be a mapping of names, got {self.structure!r:.60}")
        if not isinstance(self.values, Mapping) or not self.values or not all(isinstance(k, str) for k in self.values):
            raise TheoremError("example values must be a non-empty mapping of array names to numbers or lists")
        object.__setattr__(self, "structure", dict(self.structure))
        object.__setattr__(self, "values", dict(self.values))


@dataclass(frozen=True)
class Mutant:
    """A deliberately wrong variant of the claim that the checks must refute.

    It replaces the property (numeric face) and, optionally, the derivation (symbolic face).
    """

    name: str
    description: str
    property: Property
    derivation: Derivation | None = None

    def __post_init__(self) -> None:
        if not isinstance(self.name, str) or not NAME_PATTERN.match(self.name):
            raise TheoremError(f"mutant name {self.name!r} must be snake_case")
        if len(self.name) > MAX_NAME_LENGTH:
            raise TheoremError(f"mutant name {self.name[:20]!r}... is longer than {MAX_NAME_LENGTH} characters")
        if not callable(self.property):
            raise TheoremError(f"mutant {self.name!r}: property must be callable")


@dataclass(frozen=True)
class Source:
    """A paper or lecture that theorems come from, declared once and referred to by each theorem.

    ``citation`` is the text a reader looks up; ``bibtex`` its BibTeX entry (``verify cite``);
    ``conventions`` what every statement from it assumes (tie rules, ReLU'(0), ...); ``verbatim``
    whether its statements are quoted as the source gives them (``False``: this project's
    formalisation, documented in the catalogue's formalisations page).
    """

    key: str
    citation: str
    bibtex: str = ""
    conventions: str = ""
    verbatim: bool = False

    def with_conventions(self, conventions: str) -> "Source":
        """The same source with the conventions a family of its theorems shares."""
        return Source(self.key, self.citation, self.bibtex, conventions, self.verbatim)

    def at(self, where: str = "", *, verbatim: bool | None = None, formalisation: str = "") -> "Cited":
        """Where in this source a theorem comes from (``"Theorem 2 [Reformulation]"``), whether that
        statement is verbatim (default: the source's), and the anchor of its formalisation in the
        docs (``"t2"`` for ``formalisations.md#t2``)."""
        return Cited(self, where, self.verbatim if verbatim is None else verbatim, formalisation)


@dataclass(frozen=True)
class Cited:
    """A theorem's place in its :class:`Source` (made by :meth:`Source.at`)."""

    source: Source
    where: str
    verbatim: bool
    formalisation: str = ""

    def __str__(self) -> str:
        kind = "verbatim" if self.verbatim else "our formalisation"
        if self.formalisation:
            kind += f" {self.formalisation.upper()}"
        return f"{self.source.citation}; {self.where} ({kind})" if self.where else f"{self.source.citation} ({kind})"


@dataclass(frozen=True)
class Theorem:
    """One verifiable statement.

    ``source`` is a :class:`Cited` (``SOURCE.at("Theorem 2")``) or plain text; a ``Cited`` source
    supplies the BibTeX entry (used by ``verify cite``) and the source's conventions, to which the
    theorem's own ``conventions`` are appended.
    ``expect`` is ``"true"`` for a theorem and ``"false"`` for a stated non-theorem, which the
    search must refute (e.g. a shared global shift does not give max-pooling).
    ``structure`` is a Hypothesis strategy for the discrete part of an instance (sizes, shapes,
    choices), drawing a mapping of hashable values; ``sample(rng, s)`` draws the continuous values of
    one instance from ``rng`` (:class:`verify.Rng`, fed from a JAX PRNG key).
    ``rates_on`` lists structures on which a run also measures how often the claim fails among
    instances meeting the assumptions (a finding, e.g. for a claim said to hold "with probability 1").
    ``examples`` lists explicit instances (:class:`Example`, or ``(structure, values)`` pairs) that
    every search of the theorem runs before anything it draws.
    """

    id: str
    title: str
    source: "str | Cited"
    statement: str
    property: Property
    structure: SearchStrategy
    sample: Sampler
    tolerance: Tolerance
    assumptions: Sequence[Assumption] = ()
    derivation: "Derivation | None" = None
    mutants: Sequence[Mutant] = ()
    uses: Sequence[str] = ()
    expect: str = "true"
    conventions: str = ""
    bibtex: str = ""
    rates_on: Sequence[Mapping[str, Any]] = ()
    trivial: Sequence[Regime] = ()
    min_nontrivial: int = 100
    scope: Sequence[Mapping[str, Any]] = ()
    examples: Sequence[Any] = ()
    #: where the theorem was loaded from: a module name, or a user file's absolute path (set by the registry)
    module: str = field(default="", compare=False)
    #: SHA-256 of a user file's source as it was run ("" for modules; set by the registry)
    module_sha256: str = field(default="", compare=False, repr=False)
    #: the module whose top-level code constructed this object (its ``__name__``): a theorem
    #: belongs to the module that defines it, not to one that imports it
    defined_in: str = field(default="", init=False, compare=False, repr=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "defined_in", _defining_module())
        if isinstance(self.source, Cited):
            ref = self.source
            object.__setattr__(self, "source", str(ref))
            object.__setattr__(self, "bibtex", self.bibtex or ref.source.bibtex)
            own = self.conventions.strip()
            object.__setattr__(self, "conventions", " ".join(c for c in (ref.source.conventions.strip(), own) if c))
        if not isinstance(self.id, str) or not ID_PATTERN.match(self.id):
            raise TheoremError(
                f"theorem id {self.id!r} must be dotted lower-case, e.g. 'tian2018.thm5.bn-projection'"
            )
        if len(self.id) > MAX_ID_LENGTH:
            raise TheoremError(f"theorem id {self.id[:40]!r}... is longer than {MAX_ID_LENGTH} characters")
        for fname in ("title", "source", "statement"):
            if not isinstance(getattr(self, fname), str) or not getattr(self, fname).strip():
                raise TheoremError(f"theorem {self.id}: {fname} must be a non-empty string")
        if not callable(self.property) or not callable(self.sample):
            raise TheoremError(f"theorem {self.id}: property and sample must be callable")
        if not isinstance(self.structure, SearchStrategy):
            raise TheoremError(f"theorem {self.id}: structure must be a Hypothesis strategy")
        if not isinstance(self.tolerance, Tolerance):
            raise TheoremError(f"theorem {self.id}: tolerance must be a verify.Tolerance")
        if self.expect not in ("true", "false"):
            raise TheoremError(f"theorem {self.id}: expect must be 'true' or 'false'")
        from verify.symbolic import Derivation, Derivations

        proofs = () if self.derivation is None else (
            tuple(self.derivation) if isinstance(self.derivation, (list, tuple)) else (self.derivation,))
        if any(not isinstance(d, (Derivation, Derivations)) for d in proofs):
            raise TheoremError(f"theorem {self.id}: derivation must be a verify.Derivation (or a list of them, one "
                               "per component of the property)")
        components = [d.component for d in proofs]
        if len(proofs) > 1 and (None in components or len(set(components)) != len(components)):
            raise TheoremError(f"theorem {self.id}: with several derivations, each states a different component "
                               f"(component=...), got {components}")
        object.__setattr__(self, "derivation", proofs[0] if len(proofs) == 1 else (proofs or None))
        for kind, items in (("assumption", self.assumptions), ("mutant", self.mutants)):
            expected = Assumption if kind == "assumption" else Mutant
            names = [getattr(i, "name", None) for i in items]
            if any(not isinstance(i, expected) for i in items):
                raise TheoremError(f"theorem {self.id}: every {kind} must be a verify.{expected.__name__}")
            if len(set(names)) != len(names):
                raise TheoremError(f"theorem {self.id}: duplicate {kind} names {names}")
        if any(not isinstance(r, Mapping) for r in self.rates_on):
            raise TheoremError(f"theorem {self.id}: rates_on must be a list of structures (mappings)")
        object.__setattr__(self, "rates_on", tuple(self.rates_on))
        if any(not isinstance(r, Regime) for r in self.trivial):
            raise TheoremError(f"theorem {self.id}: every trivial regime must be a verify.Regime")
        if not isinstance(self.min_nontrivial, int) or self.min_nontrivial < 0:
            raise TheoremError(f"theorem {self.id}: min_nontrivial must be a non-negative integer")
        if any(not isinstance(r, Mapping) for r in self.scope):
            raise TheoremError(f"theorem {self.id}: scope must be a list of structures (mappings)")
        examples = []
        for k, e in enumerate(self.examples):
            if isinstance(e, tuple) and len(e) == 2:
                e = Example(*e)
            if not isinstance(e, Example):
                raise TheoremError(f"theorem {self.id}: example {k} must be a verify.Example or a (structure, values) pair")
            examples.append(e)
        object.__setattr__(self, "examples", tuple(examples))
        object.__setattr__(self, "trivial", tuple(self.trivial))
        object.__setattr__(self, "scope", tuple(dict(r) for r in self.scope))
        object.__setattr__(self, "assumptions", tuple(self.assumptions))
        object.__setattr__(self, "mutants", tuple(self.mutants))
        object.__setattr__(self, "uses", tuple(self.uses))

    @property
    def derivations(self) -> tuple[Any, ...]:
        """The derivations, one per claim (component of the property) they state."""
        if self.derivation is None:
            return ()
        return tuple(self.derivation) if isinstance(self.derivation, tuple) else (self.derivation,)

    def assumption(self, name: str) -> Assumption:
        for a in self.assumptions:
            if a.name == name:
                return a
        known = ", ".join(a.name for a in self.assumptions) or "none"
        raise TheoremError(f"theorem {self.id} has no assumption {name!r} (it has: {known})")

    def mutant(self, name: str) -> Mutant:
        for m in self.mutants:
            if m.name == name:
                return m
        known = ", ".join(m.name for m in self.mutants) or "none"
        raise TheoremError(f"theorem {self.id} has no mutant {name!r} (it has: {known})")

    def statement_hash(self) -> str:
        """SHA-256 of what the theorem claims: statement, assumptions, tolerance, expectation."""
        payload: Mapping[str, Any] = {
            "id": self.id,
            "statement": self.statement,
            "assumptions": [[a.name, a.description] for a in self.assumptions],
            "tolerance": [self.tolerance.atol, self.tolerance.rtol],
            "expect": self.expect,
        }
        return hashlib.sha256(json.dumps(payload, sort_keys=True).encode()).hexdigest()


def _defining_module() -> str:
    """``__name__`` of the module whose top-level code is constructing a theorem: the innermost
    frame running a module body (so a factory function's theorems belong to the module that
    calls it at import), or the first frame outside this module when none is."""
    frame = sys._getframe(1)
    first = ""
    while frame is not None:
        name = frame.f_globals.get("__name__", "")
        if name != __name__:
            first = first or name
            if frame.f_code.co_name == "<module>":
                return name
        frame = frame.f_back
    return first
