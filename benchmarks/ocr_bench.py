"""Seconds per screenshot and peak memory of the offline OCR check, on two sets of screenshots.

Run from the repository root: `python benchmarks/ocr_bench.py [--rounds N] [--set committed|unseen|both]`.

- committed: the 9 screenshots in tests/data/screenshots with the verdicts tests/test_evidence.py expects;
- unseen: the 12 screenshots in benchmarks/data/screenshots_unseen (drawn by make_unseen.py there, never used to
  build or tune the check), with the verdicts in its labels.tsv.

Each set runs in a fresh Python process, so its load time and peak memory are its own: peak RSS is the whole
process's ru_maxrss (Python, numpy, Pillow, onnxruntime and the models included). The numbers are printed, never
asserted; the machine may be shared, so compare medians of several runs. "cpu" is the process's CPU time (all
threads) per screenshot, which moves less than wall time when other work competes for the cores.
"""

from __future__ import annotations

import argparse
import json
import math
import resource
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

COMMITTED = ROOT / "tests" / "data" / "screenshots"
UNSEEN = ROOT / "benchmarks" / "data" / "screenshots_unseen"
TITLE = "警惕刷单返利：先给小甜头，再骗大本金"
LONG_TITLE = "警惕“高薪兼职”刷单返利骗局：先给小甜头，再骗大本金，已有多名群众上当受骗，请务必转告身边亲友"
LIAISON = "全区反诈联络员群"
# (file, push title, liaison group name, expected status), as in tests/test_evidence.py
COMMITTED_CASES = [
    ("unit_1080.png", TITLE, LIAISON, "已核验"),
    ("unit_720_q70.jpg", TITLE, LIAISON, "已核验"),
    ("unit_540_q50.jpg", TITLE, LIAISON, "已核验"),
    ("unit_dark.jpg", TITLE, LIAISON, "已核验"),
    ("unit_long_title.jpg", LONG_TITLE, LIAISON, "已核验"),
    ("reused_unit_1080.jpg", TITLE, LIAISON, "已核验"),
    ("liaison_group.jpg", TITLE, LIAISON, "存疑"),
    ("unit_other_alert.jpg", TITLE, LIAISON, "存疑"),
    ("unrelated_landscape.jpg", TITLE, LIAISON, "存疑"),
]
SETS = ("committed", "unseen")


def cases(name: str) -> list[tuple[Path, str, str, str]]:
    if name == "committed":
        return [(COMMITTED / f, title, group, status) for f, title, group, status in COMMITTED_CASES]
    rows = (UNSEEN / "labels.tsv").read_text(encoding="utf-8").splitlines()[1:]
    out = []
    for row in rows:
        f, status, title, group = row.split("\t")
        out.append((UNSEEN / f, title, group, status))
    return out


def peak_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # Linux reports KiB


def p95(xs: list[float]) -> float:
    ordered = sorted(xs)
    return ordered[max(0, math.ceil(0.95 * len(ordered)) - 1)]  # nearest rank


def measure(set_name: str, rounds: int) -> dict:
    """One set in this process: load the engine, check every screenshot `rounds` times."""
    from bot.adapters.screenshot_check import check_screenshot, load_ocr

    before = peak_mb()
    t = time.perf_counter()
    ocr = load_ocr()
    if ocr is None:
        raise SystemExit("rapidocr-onnxruntime is not installed")
    load = time.perf_counter() - t
    after_load = peak_mb()
    wall: list[float] = []
    cpu: list[float] = []
    shots = []
    for rnd in range(rounds):
        for path, title, group, expected in cases(set_name):
            data = path.read_bytes()
            t, c = time.perf_counter(), time.process_time()
            verdict = check_screenshot(data, title=title, group_name=group, earlier=[], ocr=ocr)
            wall.append(time.perf_counter() - t)
            cpu.append(time.process_time() - c)
            if rnd == 0:
                shots.append(
                    dict(
                        file=path.name,
                        seconds=wall[-1],
                        status=verdict.status,
                        reason=verdict.reason,
                        score=verdict.title_score,
                        expected=expected,
                        peak=peak_mb(),
                    )
                )
    return dict(
        set=set_name,
        load=load,
        peak_before=before,
        peak_after_load=after_load,
        wall=wall,
        cpu=cpu,
        shots=shots,
        peak=peak_mb(),
    )


def report(r: dict) -> None:
    wall, cpu = r["wall"], r["cpu"]
    agree = sum(s["status"] == s["expected"] for s in r["shots"])
    print(f"[{r['set']}] {len(r['shots'])} screenshots x {len(wall) // max(1, len(r['shots']))} rounds")
    for s in r["shots"]:
        mark = "" if s["status"] == s["expected"] else f"   <-- expected {s['expected']}"
        print(
            f"  {s['file']:34s} {s['seconds']:5.2f} s  peak {s['peak']:4.0f} MB  {s['status']} {s['reason']} "
            f"score={s['score']:.0f}{mark}"
        )
    print(f"  OCR load: {r['load']:.2f} s (peak {r['peak_before']:.0f} MB before, {r['peak_after_load']:.0f} MB after)")
    print(
        f"  seconds per screenshot: mean {statistics.mean(wall):.2f}, p95 {p95(wall):.2f}, "
        f"median {statistics.median(wall):.2f}, first call {wall[0]:.2f}; cpu mean {statistics.mean(cpu):.2f}"
    )
    print(f"  peak RSS (ru_maxrss, whole process): {r['peak']:.0f} MB")
    print(f"  verdicts as expected: {agree}/{len(r['shots'])}")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--set", choices=[*SETS, "both"], default="both")
    parser.add_argument("--child", action="store_true", help=argparse.SUPPRESS)  # one set, JSON on stdout
    args = parser.parse_args()

    if args.child:
        print(json.dumps(measure(args.set, args.rounds)))
        return 0
    failed = 0
    for name in SETS if args.set == "both" else (args.set,):
        done = subprocess.run(
            [sys.executable, __file__, "--child", "--set", name, "--rounds", str(args.rounds)],
            capture_output=True,
            text=True,
            check=False,
        )
        if done.returncode != 0:
            print(f"[{name}] failed:\n{done.stderr[-3000:]}", file=sys.stderr)
            failed = 1
            continue
        report(json.loads(done.stdout.strip().splitlines()[-1]))
    return failed


if __name__ == "__main__":
    raise SystemExit(main())
