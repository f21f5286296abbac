"""P11 on the implementation under test: its source is structurally sound (the checker's own tests are in
tests/test_selftest_static_checks.py)."""

from __future__ import annotations

import pytest

from .static_checks import check_source, source_files_of


@pytest.mark.prop("P11")
def test_P11_implementation_source_is_structurally_sound(impl_factory):
    files = source_files_of(impl_factory)
    if not files:
        pytest.skip("not applicable: no Python source files found for the implementation")
    findings = [f for path in files for f in check_source(path.read_text(encoding="utf-8"), str(path))]
    assert not findings, "structural findings:\n" + "\n".join(map(str, findings))
