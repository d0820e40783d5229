"""How well `bot.chat.reading.read_reply` reads liaison replies: precision and recall on the labelled corpora.

tests/data/confirmations/dev.tsv was written to develop the reader against; holdout.tsv was written
independently and not read while the reader was written: its numbers are the honest ones.
Each line is `label<TAB>text` (yes / no / unsure; `\\n` is a line break; # starts a comment).

    python -m benchmarks.reading [--show-errors] [FILE ...]
"""

from __future__ import annotations

import argparse
import csv
import re
import sys
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

from benchmarks.common import ROOT, Result

CORPORA = ROOT / "tests" / "data" / "confirmations"
ROSTER = ROOT / "content" / "examples" / "roster_example.csv"


@dataclass
class Score:
    name: str
    counts: Counter = field(default_factory=Counter)  # (label, verdict) -> n
    errors: list[tuple[str, str, str, str]] = field(default_factory=list)  # label, verdict, why, text
    micros: float = 0.0  # mean microseconds per reply

    def n(self, label: str, *verdicts: str) -> int:
        return sum(v for (lab, ver), v in self.counts.items() if lab == label and (not verdicts or ver in verdicts))

    @property
    def recall(self) -> float:
        """Confirmations counted, of all confirmations."""
        return self.n("yes", "yes") / max(1, self.n("yes"))

    @property
    def precision(self) -> float:
        """Counted replies that were confirmations, of all counted replies."""
        counted = self.n("yes", "yes") + self.n("no", "yes") + self.n("unsure", "yes")
        return self.n("yes", "yes") / max(1, counted)

    @property
    def reached(self) -> float:
        """Confirmations counted or asked about (the liaison's yes then counts)."""
        return self.n("yes", "yes", "unsure") / max(1, self.n("yes"))


def current_push(path: Path) -> tuple[int | None, str]:
    """The push the corpus's replies answer and its title, if a comment names them (`# 当前推送为【反诈预警 #9】警惕…`):
    a reply that names other numbers, or another case type, is then about another push, as the bot reads it."""
    for line in path.read_text(encoding="utf-8").splitlines():
        m = re.match(r"#.*当前推送\D{0,10}#\s*(\d+)】?([^；;，。]*)", line)
        if m:
            return int(m.group(1)), m.group(2)
    return None, ""


def names_another_case_type(text: str, title: str) -> bool:
    """The reply names a library case type (or short name) that the current push's title does not: the bot would
    match it to that push (handlers.liaison._pushes_named)."""
    from bot.content import load_library
    from bot.textnorm import squeeze

    library, said, current = load_library(), squeeze(text), squeeze(title)
    named = {library.find(n).case_type for n in library.names() if len(n) >= 2 and n in said}
    mine = {library.find(n).case_type for n in library.names() if len(n) >= 2 and n in current}
    return bool(named) and not (named & mine)


def load(path: Path) -> list[tuple[str, str]]:
    """(label, text) pairs of a corpus file."""
    rows = []
    for line in path.read_text(encoding="utf-8").splitlines():
        if not line.strip() or line.startswith("#"):
            continue
        label, _, text = line.partition("\t")
        rows.append((label.strip(), text.replace("\\n", "\n")))
    return rows


def roster_names() -> tuple[str, ...]:
    """The example roster's unit names, as the bot would pass them."""
    with ROSTER.open(encoding="utf-8") as fh:
        return tuple(dict.fromkeys(row["单位"] for row in csv.DictReader(fh)))


def score(path: Path) -> Score:
    from bot.chat.parsing import read_message

    names = roster_names()
    rows = load(path)
    result = Score(path.stem)
    start = time.perf_counter()
    said = [read_message(text, names) for _, text in rows]  # as the bot reads a liaison group's text
    readings = [s.reading for s in said]
    result.micros = (time.perf_counter() - start) / max(1, len(rows)) * 1e6
    push, title = current_push(path)
    for (label, text), reading, message in zip(rows, readings, said, strict=True):
        verdict = reading.verdict.value
        verdict = "no" if verdict == "unrelated" else verdict
        if push is not None and message.refs and push not in message.refs:
            verdict = "no"  # it confirms (or asks about) another push, which the bot records as such
        elif push is not None and not message.refs and names_another_case_type(text, title):
            verdict = "no"
        result.counts[(label, verdict)] += 1
        wrong = (
            (label == "yes" and verdict != "yes")
            or (label != "yes" and verdict == "yes")
            or (label == "unsure" and verdict != "unsure")
        )
        if wrong:
            result.errors.append((label, verdict, f"{reading.why}「{reading.clause}」", text))
    return result


def run(quick: bool = False) -> Result:
    """The `python -m benchmarks` entry: one row per corpus."""
    result = Result("reading")
    started = time.perf_counter()
    for path in sorted(CORPORA.glob("*.tsv")):
        s = score(path)
        result.add(f"{s.name} precision", s.precision * 100, "%", f"{s.n('yes', 'yes')} counted right")
        result.add(f"{s.name} recall", s.recall * 100, "%", f"of {s.n('yes')} confirmations")
        result.add(f"{s.name} counted or asked", s.reached * 100, "%")
        result.add(f"{s.name} time per reply", s.micros, "µs")
        result.checks[f"{s.name} non-confirmations counted"] = s.n("no", "yes")
    result.seconds = time.perf_counter() - started
    return result


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m benchmarks.reading", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument(
        "files", nargs="*", type=Path, help="corpus files (default: every .tsv in tests/data/confirmations)"
    )
    parser.add_argument("--show-errors", action="store_true", help="list every reply read wrongly")
    args = parser.parse_args(argv)
    for path in args.files or sorted(CORPORA.glob("*.tsv")):
        s = score(path)
        total = sum(s.counts.values())
        print(f"{s.name}: {total} replies ({s.n('yes')} confirmations, {s.n('no')} not, {s.n('unsure')} unsure)")
        print(
            f"  precision {s.precision:.1%}  recall {s.recall:.1%}  counted or asked {s.reached:.1%}  "
            f"{s.micros:.0f} µs per reply"
        )
        print(
            f"  confirmations asked about: {s.n('yes', 'unsure')}; missed: {s.n('yes', 'no')}; "
            f"non-confirmations counted: {s.n('no', 'yes')}; asked: {s.n('no', 'unsure')}; "
            f"unsure ones counted: {s.n('unsure', 'yes')}"
        )
        if args.show_errors:
            for label, verdict, why, text in s.errors:
                print(f"    {label:>6} -> {verdict:<6} {why}  {text!r}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
