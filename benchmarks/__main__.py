"""Run the benchmarks and print their numbers: `python -m benchmarks [--only NAME] [--quick] [--ocr]`.

pipeline  one confirmation through RelayBot.on_message vs a bare SQLite insert-and-commit (ratio)
burst     1 000 confirmations through the real Wechaty gateway into the bot process (rate, latency)
report    the monthly report for 300 units and 400 pushes (text + xlsx, chart)
city      the city month report on PostgreSQL: 10 districts x 300 units x 400 pushes (skipped without PostgreSQL)
web       the web console's push page and month report page for 300 units and 400 pushes (server-side time)
lock      confirmations on the gateway while the monthly report for 300 units renders (p50/p95/max)
memory    resident memory of the bot process after a simulated working day (no OCR)
reading   precision and recall of confirmation reading on the labelled corpora (python -m benchmarks.reading)
ocr       seconds per screenshot of the optional OCR check (only with --ocr; benchmarks/ocr_bench.py)
"""

from __future__ import annotations

import argparse
import importlib
import json
import math
import subprocess
import sys
import time
import traceback
from dataclasses import asdict
from pathlib import Path

from benchmarks.common import ROOT, Result, cpu_count, format_table

BENCHMARKS = ("pipeline", "burst", "report", "city", "web", "lock", "memory", "reading")


def run_one(name: str, *, quick: bool, profile: bool) -> Result:
    module = importlib.import_module(f"benchmarks.{name}")
    kwargs = {"profile": profile} if name == "pipeline" else {}
    return module.run(quick=quick, **kwargs)


def run_ocr(quick: bool) -> int:
    """benchmarks/ocr_bench.py as it is: it prints its own lines."""
    args = [sys.executable, str(ROOT / "benchmarks" / "ocr_bench.py"), "--rounds", "1" if quick else "3"]
    return subprocess.run(args, cwd=ROOT).returncode


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m benchmarks", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument(
        "--only",
        action="append",
        choices=[*BENCHMARKS, "ocr"],
        metavar="NAME",
        help="run only this benchmark (repeatable): " + ", ".join([*BENCHMARKS, "ocr"]),
    )
    parser.add_argument("--quick", action="store_true", help="small sizes, for a smoke test (numbers not comparable)")
    parser.add_argument("--ocr", action="store_true", help="also run the OCR benchmark (needs the [ocr] extra)")
    parser.add_argument(
        "--profile", action="store_true", help="pipeline: print the profile even when the ratio is fine"
    )
    parser.add_argument("--json", type=Path, metavar="FILE", help="also write the results as JSON")
    args = parser.parse_args(argv)

    names = [n for n in BENCHMARKS if not args.only or n in args.only]
    want_ocr = args.ocr or bool(args.only and "ocr" in args.only)
    print(
        f"relaybot benchmarks{' (--quick: small sizes)' if args.quick else ''}; {cpu_count()} CPU cores; "
        f"Python {sys.version.split()[0]}",
        flush=True,
    )
    results: list[Result] = []
    failed: list[str] = []
    for name in names:
        print(f"running {name} ...", flush=True)
        t = time.perf_counter()
        try:
            result = run_one(name, quick=args.quick, profile=args.profile)
        except Exception:
            traceback.print_exc()
            result = Result(name, problems=["the benchmark failed (traceback above)"])
            result.seconds = time.perf_counter() - t
        results.append(result)
        bad = [m.label for m in result.metrics if not math.isfinite(m.value)]
        if bad:
            result.problems.append("not a finite number: " + ", ".join(bad))
        if result.problems:
            failed.append(name)
    if results:
        print()
        print(format_table(results))
        for r in results:
            if r.notes:
                print(f"\n[{r.name}]")
                print("\n".join(r.notes))
            for problem in r.problems:
                print(f"\nPROBLEM in {r.name}: {problem}")
    if args.json:
        args.json.write_text(json.dumps([asdict(r) for r in results], ensure_ascii=False, indent=2), encoding="utf-8")
    if want_ocr:
        print("\n[ocr] benchmarks/ocr_bench.py", flush=True)
        if run_ocr(args.quick) != 0:
            failed.append("ocr")
    if failed:
        print(f"\nfailed: {', '.join(failed)}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
