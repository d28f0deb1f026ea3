"""Griffe extension: the Sphinx roles of the docstrings, as Markdown for mkdocstrings.

The code's docstrings use Sphinx roles (``:class:`TheoremError```, ``:func:`up_to```,
``:data:`~verify.xp```). Markdown has no roles, so they would render literally. This turns a
role naming a public name of ``verify`` (one listed in ``verify.__all__``) into a
cross-reference to its entry in the API reference, and any other role into a code span.
Double-backtick literals (````x````) are already code spans in Markdown and are left alone.
"""

from __future__ import annotations

import re
from typing import Any

import griffe

ROLE = re.compile(r":(?:py:)?(?:class|func|meth|data|attr|mod|exc|obj|const):`(~?)([^`]+)`")


def convert(text: str, public: set[str], package: str = "verify") -> str:
    """``text`` with every Sphinx role replaced by a cross-reference or a code span."""

    def one(m: re.Match[str]) -> str:
        tilde, target = m.group(1), m.group(2).strip()
        name = target.removeprefix(f"{package}.")
        shown = target.rsplit(".", 1)[-1] if tilde else target
        if name in public:
            return f"[`{shown}`][{package}.{name}]"
        return f"`{shown}`"

    return ROLE.sub(one, text)


def _walk(obj: griffe.Object):
    yield obj
    for member in obj.members.values():
        if not member.is_alias:
            yield from _walk(member)


class SphinxRoles(griffe.Extension):
    """Rewrite the docstrings of the whole package once it is loaded."""

    def on_package(self, *, pkg: griffe.Module, **kwargs: Any) -> None:
        public = set(pkg.exports or ())
        for obj in _walk(pkg):
            if obj.docstring is not None:
                obj.docstring.value = convert(obj.docstring.value, public, pkg.name)
