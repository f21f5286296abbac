"""junit.xml: one <testcase> per property, for CI systems that show JUnit results.

Rendered from the tiercheck.json document (docs/report-schema.md). A FAIL carries one <failure> (CI viewers
often show only the first of several) whose message names every failing test and whose text holds each one's
counterexample steps, replay command and traceback; not applicable and not run are <skipped> with the
reason. Test case names are "P8 LRU eviction"; the class name is "tiercheck.<impl>".
"""

from __future__ import annotations

import re
import xml.etree.ElementTree as ET
from pathlib import Path
from typing import Any

# Characters XML 1.0 cannot carry at all (a failure text may quote a path with NUL or other controls).
_NOT_XML = re.compile("[^\u0009\u000a\u000d\u0020-\ud7ff\ue000-\ufffd\U00010000-\U0010ffff]")


def xml_safe(text: Any) -> str:
    """`text` as a string XML 1.0 can hold: each forbidden character becomes its \\xNN escape."""
    return _NOT_XML.sub(lambda m: f"\\x{ord(m.group()):02x}", str(text))


def failure_text(failure: dict[str, Any]) -> str:
    """A failing test, as plain text: the test, the counterexample steps, the replay command, the traceback."""
    parts = [f"test: {failure.get('test', '')}"]
    steps = failure.get("steps") or []
    if steps:
        parts.append("counterexample (shrunk):")
        parts += [f"  {n}. {step}" for n, step in enumerate(steps, 1)]
    if failure.get("replay"):
        parts.append(f"replay: {failure['replay']}")
    if failure.get("reproduce_failure"):
        parts.append(f"or decorate the test with: {failure['reproduce_failure']}")
    parts += ["", failure.get("detail", "")]
    return "\n".join(parts)


def failure_message(failures: list[dict[str, Any]]) -> str:
    """One line naming every failing test: many CI viewers show one <failure> per testcase, so there is one."""
    if len(failures) == 1:
        return failures[0].get("message") or f"{failures[0].get('test', '')} failed"
    named = "; ".join(
        f"{f.get('test', '').rsplit('::', 1)[-1]} ({(f.get('message') or 'failed').splitlines()[0][:80]})"
        for f in failures
    )
    return f"{len(failures)} failing tests: {named}"


def render_junit(document: dict[str, Any]) -> ET.ElementTree:
    verdicts = document.get("verdicts", [])
    impl = document.get("impl", "")
    suite = ET.Element(
        "testsuite",
        name=f"tiercheck verify {impl}",
        tests=str(len(verdicts)),
        failures=str(sum(1 for v in verdicts if v["verdict"] == "FAIL")),
        errors="0",
        skipped=str(sum(1 for v in verdicts if v["verdict"] in ("not applicable", "not run"))),
        time=f"{sum(float(v.get('seconds', 0)) for v in verdicts):.3f}",
    )
    if document.get("generated_at"):
        suite.set("timestamp", str(document["generated_at"]).removesuffix("Z"))
    properties = ET.SubElement(suite, "properties")
    settings = {
        "impl": impl,
        "profile": document.get("profile", ""),
        "seed": "derandomized" if document.get("derandomized") else document.get("seed"),
        "schema_version": document.get("schema_version"),
    }
    settings.update({f"environment.{k}": v for k, v in (document.get("environment") or {}).items()})
    for name, value in settings.items():
        if value is not None:
            ET.SubElement(properties, "property", name=name, value=str(value))
    for v in verdicts:
        case = ET.SubElement(
            suite,
            "testcase",
            classname=f"tiercheck.{impl}",
            name=f"{v['id']} {v.get('title', '')}".strip(),
            time=f"{float(v.get('seconds', 0)):.3f}",
        )
        out = f"verdict: {v['verdict']}; tests: {v.get('tests', 0)}; examples: {v.get('examples', 0)}"
        notes = [n for t in document.get("tests", []) if v["id"] in t.get("properties", []) for n in t.get("notes", [])]
        measured = [
            f"measured: {m.get('name')} = {m.get('value')} {m.get('unit', '')}".rstrip() + f" ({m.get('test')})"
            for m in document.get("measurements", [])
            if v["id"] in str(m.get("property", "")).split(",")
        ]
        ET.SubElement(case, "system-out").text = "\n".join([out, *notes, *measured])
        if v["verdict"] == "FAIL":
            failures = v.get("failures", [])
            element = ET.SubElement(case, "failure", message=failure_message(failures)[:500], type="PropertyFailure")
            element.text = f"\n\n{'-' * 72}\n".join(failure_text(f) for f in failures)
        elif v["verdict"] == "not applicable":
            reasons = "; ".join(v.get("reasons", [])) or "not applicable"
            ET.SubElement(case, "skipped", message=f"not applicable: {reasons}"[:500], type="not applicable")
        elif v["verdict"] == "not run":
            ET.SubElement(case, "skipped", message="not run: no test for this property was selected", type="not run")
    testsuites = ET.Element("testsuites", name="tiercheck")
    for attribute in ("tests", "failures", "errors", "skipped", "time"):
        testsuites.set(attribute, suite.get(attribute, "0"))
    testsuites.append(suite)
    for element in testsuites.iter():
        element.attrib.update({k: xml_safe(v) for k, v in element.attrib.items()})
        if element.text is not None:
            element.text = xml_safe(element.text)
    tree = ET.ElementTree(testsuites)
    ET.indent(tree)
    return tree


def write_junit(path: Path, document: dict[str, Any]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    render_junit(document).write(path, encoding="utf-8", xml_declaration=True)
