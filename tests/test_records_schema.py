"""The records' JSON Schemas (verify/records/schemas): real records validate, broken ones do not,
the schemas name the writers' formats and vocabularies, and docs/records.md shows every field.

The field tables of docs/records.md are generated from the schemas by this module: after changing
a schema, run ``python tests/test_records_schema.py`` and put its output in place of the part of
docs/records.md from its first marker to its last.
"""

from __future__ import annotations

import copy
import dataclasses
import html
import json
import re
import sys
from pathlib import Path

import pytest

pytest.importorskip("jsonschema", reason="validating records needs jsonschema>=4.18 (the test extra)")

from verify.engine.runner import FACES, run_theorem  # noqa: E402
from verify.engine.search import Budget  # noqa: E402
from verify.records import certificate, counterexample, run, trust  # noqa: E402
from verify.records.io import dumps  # noqa: E402
from verify.records.schema import KINDS, schema, validator  # noqa: E402
from verify.spec import ID_PATTERN, MAX_ID_LENGTH, MAX_NAME_LENGTH, NAME_PATTERN, Regime  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
DATA = Path(__file__).parent / "data"
DOCS = ROOT / "docs" / "records.md"
BEGIN = "<!-- fields: generated from verify/records/schemas by tests/test_records_schema.py; do not edit by hand -->"
END = "<!-- end of fields -->"
#: 3 batches of 128: enough for a witness of a false claim, of a mutant and of an ablation here
TINY = Budget(3, 128)


def _strict(text: str):
    return json.loads(text, parse_constant=lambda c: pytest.fail(f"bare {c} in a record"))


@pytest.fixture(scope="module")
def records(tmp_path_factory):
    """Certificates, counterexample files and a run report from real runs: a false claim from a
    user's file; a true one from a file with a derivation and a mutant, given trivial regimes, a
    failure rate and a budget with a guided climb; a catalogue theorem's ablation witness; a claim
    only tested in a trivial regime (thin); a property that breaks (error, no derivation)."""
    from verify.config import float64
    from verify.registry import load_file, select
    from verify.render.terminal import run_json

    out = tmp_path_factory.mktemp("records")
    certs, cxs = out / "certificates", out / "counterexamples"
    (false_thm,) = load_file(DATA / "false_theorem.py")
    (true_thm,) = load_file(DATA / "true_theorem.py")
    true_thm = dataclasses.replace(
        true_thm, rates_on=[{"n": 2}], min_nontrivial=10,
        trivial=[Regime("all_positive", "every entry of x is positive", lambda s, x: (x["x"] > 0).all())])
    thin = dataclasses.replace(true_thm, id="user.thin", derivation=None, mutants=[], rates_on=[], min_nontrivial=10,
                               trivial=[Regime("every_instance", "any instance", lambda s, x: x["x"].size > 0)])

    def broken_property(s, x):
        raise ValueError("a broken property")

    broken = dataclasses.replace(thin, id="user.broken", property=broken_property, trivial=[])
    (ablated,) = select(["patel2016.switch-relu.positive-z"])
    with float64():
        reports = [run_theorem(false_thm, faces=("numeric",), budget=TINY, out_dir=cxs),
                   run_theorem(true_thm, faces=FACES, budget=Budget(20, 32), out_dir=cxs),
                   run_theorem(ablated, faces=("numeric", "ablate"), budget=TINY, out_dir=cxs),
                   run_theorem(thin, faces=("numeric",), budget=Budget(3, 32)),
                   run_theorem(broken, faces=("symbolic", "numeric"), budget=Budget(3, 32))]
    paths = [certificate.write_certificate(r, certs) for r in reports]
    return {
        "reports": reports,
        "certificates": [_strict(p.read_text()) for p in paths],
        "counterexamples": {p.name: _strict(p.read_text()) for p in sorted(cxs.glob("*.json"))},
        "counterexample_dir": cxs,
        "run": _strict(dumps(run_json([r.certificate() for r in reports]))),
    }


def _errors(kind: str, record) -> list[str]:
    """Where the record breaks the schema: the JSON path of every error, nested ones included."""
    out: list[str] = []

    def walk(errors):
        for e in errors:
            out.append(e.json_path)
            walk(e.context or ())

    walk(validator(kind).iter_errors(record))
    return out


# ------------------------------------------------------------------ the schemas themselves


@pytest.mark.parametrize("kind", KINDS)
def test_each_schema_is_a_valid_draft_2020_12_schema(kind):
    from jsonschema import Draft202012Validator

    s = schema(kind)
    assert s["$schema"] == "https://json-schema.org/draft/2020-12/schema"
    Draft202012Validator.check_schema(s)


@pytest.mark.parametrize("kind, fmt", [("certificate", certificate.FORMAT), ("counterexample", counterexample.FORMAT),
                                       ("run", run.FORMAT)])
def test_id_and_format_are_the_writers_format(kind, fmt):
    s = schema(kind)
    assert s["$id"] == f"urn:dlverify:{fmt}"
    assert s["properties"]["format"] == {"description": "The record's format and version.", "const": fmt}
    assert "format" in s["required"]


def _objects(s, where="$"):
    """Every (place, subschema with properties) in a schema."""
    if isinstance(s, dict):
        if "properties" in s:
            yield where, s
        for k, v in s.items():
            yield from _objects(v, f"{where}/{k}")
    elif isinstance(s, list):
        for i, v in enumerate(s):
            yield from _objects(v, f"{where}/{i}")


@pytest.mark.parametrize("kind", KINDS)
def test_every_field_has_a_meaning(kind):
    for where, obj in _objects(schema(kind)):
        for key, sub in obj["properties"].items():
            assert sub.get("description", "").strip(), f"{kind} {where}: {key} has no description"


def test_vocabularies_are_the_writers():
    cert, cx = schema("certificate"), schema("counterexample")
    d = cert["$defs"]
    assert d["trust_row"]["properties"]["class"]["enum"] == list(trust.CLASSES)
    assert d["search"]["properties"]["verdict"]["enum"] == ["confirmed", "thin", "refuted", "vacuous", "error"]
    assert cert["properties"]["faces"]["items"]["enum"] == list(FACES)
    assert cx["properties"]["established"]["enum"] == list(counterexample.ESTABLISHED)
    assert cx["$defs"]["array"]["properties"]["dtype"]["enum"] == list(counterexample.DTYPES)
    assert cx["$defs"]["array"]["properties"]["shape"]["maxItems"] == counterexample.MAX_DIMS
    assert cx["$defs"]["theorem_id"]["pattern"] == ID_PATTERN.pattern
    assert cx["$defs"]["assumption_name"]["pattern"] == NAME_PATTERN.pattern
    assert cx["$defs"]["assumption_name"]["maxLength"] == MAX_NAME_LENGTH
    assert cx["$defs"]["theorem_id"]["maxLength"] == MAX_ID_LENGTH
    counts = d["counts_by_name"]["propertyNames"]["pattern"]
    assert counts == NAME_PATTERN.pattern  # assumptions and trivial regimes
    assert cx["properties"]["variant"]["pattern"] == counterexample._VARIANT.pattern
    assert d["search"]["properties"]["variant"]["pattern"] == counterexample._VARIANT.pattern


# ------------------------------------------------------------------ real records validate


def test_real_records_cover_what_the_schemas_describe(records):
    """The records exercise the optional parts: an embedded counterexample of each variant, a
    theorem file, failure rates, trivial regimes, a guided climb, a derivation with a cross-check,
    the thin and error verdicts."""
    false_cert, true_cert, ablated_cert, thin_cert, broken_cert = records["certificates"]
    assert false_cert["numeric"]["verdict"] == "refuted" and false_cert["numeric"]["counterexample"]["theorem_file"]
    assert true_cert["symbolic"]["claims"][0]["crosscheck"]["status"] == "agrees"
    assert true_cert["failure_rates"] and true_cert["numeric"]["guided"]["batches"] > 0
    assert {r["class"] for r in true_cert["trust"]} >= {"proved", "measured"}
    assert any("nontrivial" in r for r in true_cert["trust"])
    assert true_cert["mutants"][0]["numeric"]["counterexample"]["variant"] == "mutant:plus"
    assert ablated_cert["ablations"][0]["verdict"] == "necessary"
    variants = {cx["variant"].split(":")[0] for cx in records["counterexamples"].values()}
    assert variants == {"claim", "mutant", "ablate"}
    assert "module_relative" in false_cert["theorem"]
    assert thin_cert["numeric"]["verdict"] == "thin" and thin_cert["trust"][0]["class"] == "thin"
    assert broken_cert["numeric"]["verdict"] == "error" and broken_cert["numeric"]["coverage"] == {}
    assert broken_cert["symbolic"] == {"verdict": "none", "summary": "-", "claims": []}


def test_certificates_validate(records):
    for cert in records["certificates"]:
        assert _errors("certificate", cert) == [], cert["theorem"]["id"]
        certificate.validate(cert, "certificate")  # and dlverify's own reader takes it


def test_counterexample_files_validate(records):
    assert len(records["counterexamples"]) >= 3
    for name, cx in records["counterexamples"].items():
        assert "file" not in cx
        assert _errors("counterexample", cx) == [], name
        counterexample.Counterexample.load(records["counterexample_dir"] / name)  # and `verify replay`'s reader


def test_run_report_validates(records):
    report = records["run"]
    assert report["format"] == run.FORMAT and report["ok"] == all(r.ok for r in records["reports"])
    assert [t["theorem"]["id"] for t in report["theorems"]] == [r.theorem.id for r in records["reports"]]
    assert _errors("run", report) == []


def test_verify_check_json_on_stdout_validates(tmp_path, capfd):
    """What the command prints, not only what run_json returns."""
    from verify import cli

    capfd.readouterr()
    code = cli.main(["check", str(DATA / "false_theorem.py"), "--json", "--examples", "3", "--batch", "128",
                     "--certificates", str(tmp_path / "c"), "--out", str(tmp_path / "x")])
    out, _ = capfd.readouterr()
    report = _strict(out)
    assert code == 1 and report["ok"] is False  # a claim stated as true, refuted
    assert report["theorems"][0]["numeric"]["verdict"] == "refuted"
    assert _errors("run", report) == []
    for p in (tmp_path / "x").glob("*.json"):
        assert _errors("counterexample", _strict(p.read_text())) == []


def test_a_guided_climb_witness_validates_and_replays(records, tmp_path):
    """The guided climb's witness has no batch (key_seed and index -1): the schema and the reader
    of `verify replay` both accept what the search writes."""
    from verify.engine.replay import replay
    from verify.registry import theorem_of

    cx = counterexample.Counterexample.load(records["reports"][0].numeric.counterexample.path)
    assert cx.theorem_id == "user.relu-additive" and cx.key_seed >= 0
    cx.key_seed = cx.index = -1
    path = cx.save(tmp_path)
    assert _errors("counterexample", _strict(path.read_text())) == []
    loaded = counterexample.Counterexample.load(path)
    assert (loaded.key_seed, loaded.index) == (-1, -1)
    assert replay(loaded, theorem_of(loaded)).reproduced


# ------------------------------------------------------------------ the schemas can fail


def _first_cx(records):
    return copy.deepcopy(next(iter(records["counterexamples"].values())))


def test_a_wrong_type_is_rejected(records):
    cert = copy.deepcopy(records["certificates"][0])
    cert["seed"] = "0"
    assert "$.seed" in _errors("certificate", cert)
    cx = _first_cx(records)
    cx["finite"] = 1
    assert _errors("counterexample", cx) == ["$.finite"]
    cx = _first_cx(records)
    first = next(iter(cx["instance"]))
    cx["instance"][first]["values"] = "1.0"
    assert f"$.instance.{first}.values" in _errors("counterexample", cx)


def test_a_missing_required_field_is_rejected(records):
    cx = _first_cx(records)
    del cx["established"]
    assert _errors("counterexample", cx) == ["$"]
    cert = copy.deepcopy(records["certificates"][0])
    del cert["theorem"]["statement_sha256"]
    assert "$.theorem" in _errors("certificate", cert)
    report = copy.deepcopy(records["run"])
    del report["theorems"][0]["libraries"]["jax"]
    assert "$.theorems[0].libraries" in _errors("run", report)


def test_an_unknown_verdict_or_class_is_rejected(records):
    cert = copy.deepcopy(records["certificates"][1])
    cert["numeric"]["verdict"] = "probably"
    assert "$.numeric.verdict" in _errors("certificate", cert)
    cert = copy.deepcopy(records["certificates"][1])
    cert["trust"][0]["class"] = "sure"
    assert _errors("certificate", cert) == ["$.trust[0].class"]
    cert = copy.deepcopy(records["certificates"][2])
    cert["ablations"][0]["verdict"] = "maybe"
    assert _errors("certificate", cert) == ["$.ablations[0].verdict"]
    cx = _first_cx(records)
    cx["established"] = "likely"
    assert _errors("counterexample", cx) == ["$.established"]


def test_an_unknown_field_or_format_is_rejected(records):
    cx = _first_cx(records)
    cx["extra"] = 1
    assert _errors("counterexample", cx) == ["$"]
    cx = _first_cx(records)
    cx["format"] = "dlverify-counterexample/2"
    assert _errors("counterexample", cx) == ["$.format"]
    cert = copy.deepcopy(records["certificates"][0])
    cert["numeric"]["counterexample"]["shrink"]["speed"] = "fast"
    assert "$.numeric.counterexample.shrink" in _errors("certificate", cert)
    report = copy.deepcopy(records["run"])
    report["theorems"][0]["theorem"]["id"] = "Not An Id"
    assert "$.theorems[0].theorem.id" in _errors("run", report)


# ------------------------------------------------------------------ the docs show every field


def _ref_name(ref: str) -> str:
    if ref.startswith("urn:dlverify:"):
        target, _, pointer = ref.removeprefix("urn:dlverify:").partition("#")
        kind = target.split("-")[1].split("/")[0]
        return f"[{kind}](#{kind})" if not pointer else _ref_name("#" + pointer)
    parts = [p for p in ref.removeprefix("#/$defs/").split("/") if p != "properties"]
    return f"[{'.'.join(parts)}](#{'-'.join(parts).replace('_', '-')})"


def _type(s: dict) -> str:
    """A subschema's type in a few words."""
    if "$ref" in s:
        return _ref_name(s["$ref"])
    if "const" in s:
        return f"`{json.dumps(s['const'])}`"
    if "enum" in s:
        return "one of " + ", ".join(f"`{json.dumps(v)}`" for v in s["enum"])
    for key in ("anyOf", "oneOf"):
        if key in s:
            return " or ".join(_type(x) for x in s[key])
    if "allOf" in s:
        return _type(s["allOf"][0])
    t = s.get("type", "any JSON value")
    if isinstance(t, list):
        return " or ".join(t)
    if t == "array":
        n = f"{s['minItems']} " if s.get("minItems") == s.get("maxItems") and "minItems" in s else ""
        return f"array of {n}{_type(s['items'])}" if "items" in s else "array"
    if t == "object" and isinstance(s.get("additionalProperties"), dict) and "properties" not in s:
        return f"object of {_type(s['additionalProperties'])}"
    if t == "string" and "pattern" in s:
        return f"string matching `{s['pattern']}`"
    if t == "integer" and "minimum" in s:
        return f"integer >= {s['minimum']}"
    return t


def _cell(text: str) -> str:
    """Text for a table cell: a pipe escaped (a backslash shows literally in a code span, so a code
    span with a pipe is written as HTML with the pipe as an entity)."""
    def code(m: re.Match) -> str:
        span = m.group(1)
        return f"<code>{html.escape(span).replace('|', '&#124;')}</code>" if "|" in span else m.group(0)

    parts = re.split(r"(`[^`]*`)", text.replace("\n", " "))
    return "".join(re.sub(r"`([^`]*)`", code, p) if p.startswith("`") else p.replace("|", "\\|") for p in parts)


def _tables(name: str, s: dict, out: list[str], anchor: str) -> None:
    """A table for ``s`` (an object with properties), then one for each object defined inline in it."""
    nested: list[tuple[str, dict]] = []
    out += ["", f"#### `{name}` {{#{anchor}}}", ""]
    out += [s["description"], ""] if s.get("description") else []
    out += ["| field | type | required | meaning |", "|---|---|---|---|"]
    required = set(s.get("required", ()))
    for key, sub in s["properties"].items():
        inline = [x for x in [sub, *sub.get("anyOf", ()), *sub.get("oneOf", ()), sub.get("items", {})]
                  if isinstance(x, dict) and "properties" in x]
        typ = _type(sub)
        for x in inline:
            child = f"{anchor}-{key.replace('_', '-')}"
            nested.append((f"{name}.{key}", child, dict(x, description=x.get("description", sub.get("description", "")))))
            typ = typ.replace("object", f"[object](#{child})", 1) if "object" in typ else f"[object](#{child})"
        out.append(f"| `{key}` | {_cell(typ)} | {'yes' if key in required else 'no'} | "
                   f"{_cell(sub.get('description', ''))} |")
    if s.get("additionalProperties") is False:
        out += ["", "No other field."]
    elif isinstance(s.get("additionalProperties"), dict):
        out += ["", f"Other fields: {_cell(_type(s['additionalProperties']))}."]
    for child_name, child_anchor, child in nested:
        _tables(child_name, child, out, child_anchor)


def markdown() -> str:
    """The field tables of docs/records.md, from the schemas."""
    out = [BEGIN]
    for kind, title in (("certificate", "Certificate"), ("counterexample", "Counterexample"), ("run", "Run report")):
        s = schema(kind)
        out += ["", f"### {title} (`{s['properties']['format']['const']}`) {{#{kind}}}", "",
                f"Schema: `verify/records/schemas/{kind}.schema.json`, `$id` `{s['$id']}`.", ""]
        out += [s["description"]]
        _tables(kind, dict(s, description=""), out, f"{kind}-fields")
        for name, d in s.get("$defs", {}).items():
            if "properties" in d:
                _tables(name, d, out, name.replace("_", "-"))
            elif kind != "certificate" or "$ref" not in d:  # the certificate's aliases of counterexample defs
                out += ["", f"#### `{name}` {{#{name.replace('_', '-')}}}", "",
                        f"{_cell(d.get('description', ''))} Type: {_cell(_type(d))}."]
    return "\n".join(out + ["", END])


def test_docs_field_tables_are_generated_from_the_schemas():
    text = DOCS.read_text(encoding="utf-8")
    assert BEGIN in text and END in text, "docs/records.md lacks the generated field tables"
    shown = text[text.index(BEGIN): text.index(END) + len(END)]
    assert shown == markdown(), "docs/records.md is out of date: run python tests/test_records_schema.py"


def test_docs_mention_every_field():
    """Every property of every object of each schema (top level and $defs) is named in the docs."""
    text = DOCS.read_text(encoding="utf-8")

    for kind in KINDS:
        for key in (key for _, obj in _objects(schema(kind)) for key in obj["properties"]):
            assert re.search(rf"\| `{re.escape(key)}` \|", text), f"{kind}: field {key} not in docs/records.md"


if __name__ == "__main__":
    sys.stdout.write(markdown() + "\n")
