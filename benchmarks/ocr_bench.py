"""Seconds per screenshot and peak memory of the offline OCR check.

Run from the repository root: `python benchmarks/ocr_bench.py [--rounds N]`.
Uses the committed positive screenshots in tests/data/screenshots.
"""

from __future__ import annotations

import argparse
import resource
import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bot.adapters.screenshot_check import check_screenshot, load_ocr  # noqa: E402

SHOTS = ROOT / "tests" / "data" / "screenshots"
TITLE = "警惕刷单返利：先给小甜头，再骗大本金"
LONG_TITLE = "警惕“高薪兼职”刷单返利骗局：先给小甜头，再骗大本金，已有多名群众上当受骗，请务必转告身边亲友"
POSITIVES = {
    "unit_1080.png": TITLE,
    "unit_720_q70.jpg": TITLE,
    "unit_540_q50.jpg": TITLE,
    "unit_dark.jpg": TITLE,
    "unit_long_title.jpg": LONG_TITLE,
}


def peak_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # Linux reports KiB


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()

    print(f"peak memory before OCR load: {peak_mb():.0f} MB")
    t = time.perf_counter()
    ocr = load_ocr()
    if ocr is None:
        print("rapidocr-onnxruntime is not installed", file=sys.stderr)
        return 1
    print(f"OCR load: {time.perf_counter() - t:.2f} s, peak memory {peak_mb():.0f} MB")

    times: dict[str, list[float]] = {name: [] for name in POSITIVES}
    first = None
    for rnd in range(args.rounds):
        for name, title in POSITIVES.items():
            data = (SHOTS / name).read_bytes()
            t = time.perf_counter()
            verdict = check_screenshot(data, title=title, group_name="全区反诈联络员群", earlier=[], ocr=ocr)
            dt = time.perf_counter() - t
            if first is None:
                first = dt
            times[name].append(dt)
            if rnd == 0:
                print(f"  {name:22s} {dt:5.2f} s  {verdict.status} {verdict.reason} score={verdict.title_score:.0f}")
    every = [x for xs in times.values() for x in xs]
    warm = every[1:]
    print(f"first call (cold): {first:.2f} s")
    print(f"seconds per screenshot over {len(every)} calls: mean {statistics.mean(every):.2f}, "
          f"max {max(every):.2f}; without the first call: mean {statistics.mean(warm):.2f}, max {max(warm):.2f}")
    for name, xs in times.items():
        print(f"  {name:22s} mean {statistics.mean(xs):.2f} s  max {max(xs):.2f} s")
    print(f"peak memory (ru_maxrss): {peak_mb():.0f} MB")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
