"""Smoke test of the benchmarks (benchmarks/, `python -m benchmarks`): each runs in --quick mode, its numbers
are there and sane, and nothing it sent through the bot was lost. The numbers themselves are not judged here:
they depend on the machine (see benchmarks/README.md)."""

from __future__ import annotations

import json
import math
import subprocess
import sys

import pytest

from benchmarks import burst, lock, memory, pipeline, report
from benchmarks.common import Result
from tests.bot_process import ROOT

# The benchmarks measure the bot on SQLite files of their own, so both passes of the suite run them the same way.
# Each runs a whole benchmark program (about a minute together on a busy 2-core machine).
pytestmark = pytest.mark.slow


def assert_sane(result: Result, *labels: str) -> None:
    assert not result.problems, result.problems
    for m in result.metrics:
        assert math.isfinite(m.value) and m.value > 0, f"{result.name}: {m.label} = {m.value}"
    for label in labels:
        result.value(label)  # present
    for m in result.metrics:
        if m.label.endswith(" p50"):
            prefix = m.label[: -len(" p50")]
            assert m.value <= result.value(f"{prefix} p95"), f"{prefix}: p50 above p95"
    assert result.seconds > 0


def test_pipeline_stores_every_confirmation_and_prints_the_ratio():
    result = pipeline.run(quick=True)
    assert_sane(
        result,
        "confirmation through RelayBot.on_message mean",
        "confirmation through RelayBot.on_message p95",
        "bare sqlite3 INSERT + COMMIT of one row mean",
        "ratio pipeline/bare (mean)",
    )
    assert result.checks["stored"] == result.checks["expected"] == 20 * (1 + 3)
    assert result.checks["bare_rows"] == result.checks["bare_expected"] == result.checks["expected"]
    ratio = result.value("ratio pipeline/bare (mean)")
    expected = result.value("confirmation through RelayBot.on_message mean") / result.value(
        "bare sqlite3 INSERT + COMMIT of one row mean"
    )
    assert ratio == pytest.approx(expected)
    # The pipeline commits once per confirmation, like the bare insert.
    assert result.value("    in SQLite: COMMIT (mean)") < result.value("confirmation through RelayBot.on_message mean")


@pytest.mark.e2e  # the burst goes through the real Node gateway
def test_burst_through_the_real_gateway_stores_every_message():
    result = burst.run(quick=True)
    assert_sane(
        result,
        "stored confirmations per second",
        "latency said -> row in the database p50",
        "latency said -> row in the database p95",
        "latency of one message into an idle bot p50",
    )
    checks = result.checks
    assert checks["stored"] == checks["messages"] == checks["expected"] == 100
    assert checks["probes_stored"] == checks["probes"] > 0
    assert checks["rows_in_db"] == checks["messages"] + checks["probes"]
    assert checks["errors_logged"] == 0
    # A message cannot be stored before it was said, nor the whole burst faster than it arrived.
    assert result.value("latency said -> row in the database p50") > 0
    assert result.value("stored confirmations per second") <= result.value("  messages said per second on the gateway")


def test_monthly_report_numbers_add_up():
    result = report.run(quick=True)
    assert_sane(result, "monthly report: figures + text + xlsx (mean)", "chart PNG (render_chart, mean)")
    checks = result.checks
    assert checks["units"] == 30 and checks["pushes"] == 40
    assert checks["relayed"] == checks["confirmations"]
    assert checks["relayed"] + checks["missed"] == checks["expected_pairs"] == 30 * 40
    assert 70 <= checks["rate_pct"] <= 95  # about 85 %


def test_confirmations_are_stored_while_the_monthly_report_renders():
    result = lock.run(quick=True)
    assert_sane(
        result,
        "monthly report: text queued -> files attached",
        "confirmation said during the render -> row in the database p95",
        "confirmation said during the render -> row in the database max",
    )
    checks = result.checks
    assert checks["text_queued"] and checks["files_attached"]
    assert checks["stored"] == checks["said"] > 0
    assert checks["errors_logged"] == 0


def test_memory_after_a_simulated_day_without_ocr():
    result = memory.run(quick=True)
    assert_sane(result, "VmRSS right after start", "VmRSS after the day", "VmHWM (peak RSS) over the day")
    checks = result.checks
    assert checks["confirmations"] == checks["expected"] > 0
    assert checks["pushes_closed"] == 3 and checks["misses"] > 0 and checks["reminders"] > 0
    assert checks["ocr_libraries_mapped"] == 0
    assert checks["errors_logged"] == 0
    for label in ("VmRSS right after start", "VmRSS after the day"):
        assert 20 < result.value(label) < 4000  # MB: a Python process, not a unit mix-up
    assert result.value("VmHWM (peak RSS) over the day") >= result.value("VmRSS after the day")


def test_the_command_prints_a_table_and_writes_json(tmp_path):
    out = tmp_path / "results.json"
    done = subprocess.run(
        [sys.executable, "-m", "benchmarks", "--only", "report", "--quick", "--json", str(out)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    lines = done.stdout.splitlines()
    assert any(line.startswith("benchmark") and "measure" in line and "value" in line for line in lines)
    assert any("monthly report: figures + text + xlsx (mean)" in line for line in lines)
    (saved,) = json.loads(out.read_text(encoding="utf-8"))
    assert saved["name"] == "report" and saved["problems"] == []
    assert all(m["value"] > 0 for m in saved["metrics"])


def test_reading_prints_precision_and_recall_for_every_corpus():
    from benchmarks import reading

    result = reading.run(quick=True)
    corpora = sorted(p.stem for p in reading.CORPORA.glob("*.tsv"))
    assert corpora and all(0 < result.value(f"{c} recall") <= 100 for c in corpora)
    assert all(result.checks[f"{c} non-confirmations counted"] == 0 for c in corpora)


@pytest.mark.postgres
def test_city_report_benchmark_adds_up():
    from benchmarks import city

    result = city.run(quick=True)
    assert_sane(
        result, "city month report: figures + text + xlsx (warm mean)", "  figures, cold (a new connection, first run)"
    )
    assert result.checks["districts"] == 3 and result.checks["units"] == 90 and result.checks["pushes"] == 120
    assert result.checks["expected"] == 3 * 30 * 40
    assert result.checks["relayed"] == result.checks["confirmations"]


def test_city_report_benchmark_says_why_it_skips_without_postgres(monkeypatch):
    from benchmarks import city

    monkeypatch.delenv("RELAYBOT_BENCH_DATABASE_URL", raising=False)
    monkeypatch.delenv("RELAYBOT_TEST_DATABASE_URL", raising=False)
    result = city.run(quick=True)
    assert not result.metrics and not result.problems
    assert result.notes and result.notes[0].startswith("skipped: no PostgreSQL")
