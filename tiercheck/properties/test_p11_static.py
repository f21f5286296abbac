"""P11 on the implementation under test: its own source is structurally sound.

The files checked are those of the object the factory returns — the package of its class, of every class
in its MRO and of the factory itself (tiercheck's own packages and the standard library left out) — so an
adapter named by --impl does not hide the code behind it. The files scanned are listed in the report (a note
on the test, and the measured figure p11_files_scanned). The checker's own tests are in
tests/test_selftest_static_checks.py.
"""

from __future__ import annotations

import pytest

from .static_checks import check_source, display_path, implementation_source_files


@pytest.mark.prop("P11")
def test_P11_implementation_source_is_structurally_sound(open_cache, impl_factory, measure, request):
    cache = open_cache(redis_url=None, database_url=None)  # only to learn its classes: no backend needed
    files = implementation_source_files(cache, impl_factory)
    measure("p11_files_scanned", len(files), unit="files")
    if not files:
        pytest.skip("not applicable: no source found for the implementation")
    findings, unreadable = [], []
    for path in files:
        try:
            findings += check_source(path.read_text(encoding="utf-8"), display_path(path))
        except (SyntaxError, UnicodeDecodeError, ValueError) as exc:  # not Python 3 source: nothing to judge
            unreadable.append(f"{display_path(path)} ({type(exc).__name__})")
    scanned = f"P11 scanned {len(files)} file(s): " + ", ".join(display_path(p) for p in files)
    if unreadable:
        scanned += "; not parsed: " + ", ".join(unreadable)
    request.node.user_properties.append(("tiercheck.note", scanned))
    assert not findings, "structural findings:\n" + "\n".join(map(str, findings)) + f"\n({scanned})"
