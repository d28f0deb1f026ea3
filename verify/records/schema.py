"""The JSON Schemas (draft 2020-12) of the records: certificate, counterexample and run report.

The schema files ship with the package (``verify/records/schemas/NAME.schema.json``); each
``$id`` is ``urn:dlverify:FORMAT``, the format the record names in its ``format`` field. The
certificate schema refers to the counterexample schema (a search's counterexample) and the run
report's to the certificate's, so validate with all three registered: :func:`validator` does
that (it needs the ``jsonschema`` package, which dlverify itself does not require).
"""

from __future__ import annotations

import json
from functools import cache
from importlib.resources import files
from typing import Any

from verify.errors import VerifyError

#: the records, by the name of their schema file
KINDS = ("certificate", "counterexample", "run")


@cache
def _text(kind: str) -> str:
    if kind not in KINDS:
        raise VerifyError(f"no schema for {kind!r} (records: {', '.join(KINDS)})")
    return files("verify.records").joinpath("schemas", f"{kind}.schema.json").read_text(encoding="utf-8")


def schema(kind: str) -> dict[str, Any]:
    """The schema of one record (``certificate``, ``counterexample`` or ``run``), as a fresh dict."""
    return json.loads(_text(kind))


def validator(kind: str) -> Any:
    """A ``jsonschema`` validator of ``kind``, with the other schemas registered for its ``$ref``s.
    ``validator("certificate").validate(record)`` raises ``jsonschema.ValidationError`` for a record
    that does not follow the schema."""
    try:
        from jsonschema import Draft202012Validator
        from referencing import Registry, Resource
    except ImportError as exc:  # pragma: no cover - jsonschema is a test dependency only
        raise VerifyError("validating a record needs the jsonschema package: pip install 'jsonschema>=4.18'") from exc
    schemas = {k: schema(k) for k in KINDS}
    registry = Registry().with_resources((s["$id"], Resource.from_contents(s)) for s in schemas.values())
    return Draft202012Validator(schemas[kind], registry=registry, format_checker=Draft202012Validator.FORMAT_CHECKER)
