"""The report's text, exit status and JSON form."""

from __future__ import annotations

import json

from divekit.check.report import FAIL, NOT_RUN, PASS, FailureReport, PropertyResult, Report


def report(*results: PropertyResult, limit: str = "") -> Report:
    return Report("corr2d", "2.1", "卷积层", "corr2d(X, K) -> Y", {"name": "corr2d", "path": "/tmp/mine.py",
                  "sha256": "ab" * 32}, properties=[r.name for r in results], results=list(results), seed=0,
                  max_examples=40, limit=limit)  # fmt: skip


FAILED = PropertyResult("values", FAIL, 3, FailureReport({"X": "tensor([[1]])"}, "Y", "tensor([[2]])",
                                                         "tensor([[1]])", "largest difference 1 at [0, 0]", 1.0,
                                                         hint="the kernel is flipped"))  # fmt: skip


def test_passing_report_exit_0():
    found = report(PropertyResult("shape", PASS, 43))
    assert found.passed and found.exit_code == 0
    assert "PASS  shape (43 examples)" in str(found) and str(found).splitlines()[-1].startswith("OK: all 1 properties")


def test_failing_report_shows_input_values_difference_and_hint():
    found = report(PropertyResult("shape", PASS, 43), FAILED, PropertyResult("gradients", NOT_RUN, reason="later"))
    text = str(found)
    assert found.exit_code == 1 and found.hints == ["the kernel is flipped"]
    for line in ("divekit check corr2d (§2.1 卷积层): corr2d from /tmp/mine.py", "  FAIL  values",
                 "          X = tensor([[1]])", "        Y: largest difference 1 at [0, 0]",
                 "          expected: tensor([[2]])", "          actual:   tensor([[1]])",
                 "        hint: the kernel is flipped", "        not run: later"):  # fmt: skip
        assert line in text.splitlines(), line
    assert text.splitlines()[-1].startswith("FAILED: 1 of 3 properties fail")


def test_a_limit_fails_the_report_even_with_no_property_failed():
    found = report(PropertyResult("shape", PASS, 43), limit="the time limit of 5 s was hit")
    assert not found.passed and found.exit_code == 1 and "STOPPED: the time limit of 5 s was hit" in str(found)


def test_json_round_trip():
    found = report(PropertyResult("shape", PASS, 43), FAILED)
    data = json.loads(json.dumps(found.to_dict(), ensure_ascii=False))
    assert data["status"] == "fail" and data["exit_code"] == 1 and data["title"] == "卷积层"
    assert data["results"][1]["failure"]["largest_difference"] == 1.0
    assert Report.from_dict(data) == found
