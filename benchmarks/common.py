"""What the benchmarks share: results and their table, statistics, a synthetic district, gateway set-up."""

from __future__ import annotations

import csv
import math
import os
import statistics
import sys
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:  # `python benchmarks/x.py` as well as `python -m benchmarks`
    sys.path.insert(0, str(ROOT))

TZ = ZoneInfo("Asia/Shanghai")
LIAISON_ROOM = "31001@chatroom"
LIAISON_ROOM_NAME = "全区反诈联络员群"
OFFICE_ROOM = "31002@chatroom"
OFFICE_ROOM_NAME = "反诈办工作群"
ADMIN_ID, ADMIN_NAME = "wxid_bench_admin", "陈静"


# ---- results -----------------------------------------------------------------------------------


@dataclass
class Metric:
    label: str
    value: float
    unit: str
    note: str = ""


@dataclass
class Result:
    """What one benchmark measured. `checks` are counts a caller can verify (e.g. rows stored vs expected)."""

    name: str
    metrics: list[Metric] = field(default_factory=list)
    checks: dict[str, float] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)  # anything that makes the numbers untrustworthy
    seconds: float = 0.0  # wall time of the whole benchmark, set-up included

    def add(self, label: str, value: float, unit: str, note: str = "") -> None:
        self.metrics.append(Metric(label, float(value), unit, note))

    def value(self, label: str) -> float:
        """The value of the metric called `label` (KeyError if there is none)."""
        for m in self.metrics:
            if m.label == label:
                return m.value
        raise KeyError(label)

    def add_timings(self, prefix: str, seconds: list[float], unit: str = "ms", note: str = "") -> dict[str, float]:
        """mean, p50 and p95 of `seconds`, shown in `unit` (ms or s); returns them in seconds."""
        st = summary(seconds)
        scale = 1000.0 if unit == "ms" else 1.0
        for key in ("mean", "p50", "p95"):
            self.add(f"{prefix} {key}", st[key] * scale, unit, note if key == "mean" else "")
        return st


def percentile(values: list[float], q: float) -> float:
    """The q-th percentile (0..100), linear between closest ranks."""
    if not values:
        return math.nan
    xs = sorted(values)
    k = (len(xs) - 1) * q / 100
    lo, hi = math.floor(k), math.ceil(k)
    return xs[lo] + (xs[hi] - xs[lo]) * (k - lo)


def summary(values: list[float]) -> dict[str, float]:
    return {
        "n": len(values),
        "mean": statistics.fmean(values) if values else math.nan,
        "p50": percentile(values, 50),
        "p95": percentile(values, 95),
        "min": min(values) if values else math.nan,
        "max": max(values) if values else math.nan,
    }


def _shown(value: float) -> str:
    if math.isnan(value) or math.isinf(value):
        return str(value)
    if value == int(value) and abs(value) >= 100:
        return f"{int(value):,}"
    if abs(value) >= 100:
        return f"{value:,.0f}"
    if abs(value) >= 10:
        return f"{value:.1f}"
    return f"{value:.3g}" if abs(value) < 1 else f"{value:.2f}"


def _count(value: float) -> str:
    return str(int(value)) if float(value).is_integer() else _shown(value)


def format_table(results: list[Result]) -> str:
    """One line per metric, grouped by benchmark."""
    rows = [("benchmark", "measure", "value", "unit", "note")]
    for r in results:
        for i, m in enumerate(r.metrics):
            rows.append((r.name if i == 0 else "", m.label, _shown(m.value), m.unit, m.note))
        checks = ", ".join(f"{k}={_count(v)}" for k, v in r.checks.items())
        rows.append(("" if r.metrics else r.name, "checks", "", "", checks))
        rows.append(("", "wall time of the benchmark", _shown(r.seconds), "s", ""))
    widths = [max(_width(row[c]) for row in rows) for c in range(4)]
    lines = []
    for n, row in enumerate(rows):
        if n > 1 and row[0]:
            lines.append("")
        cells = [
            _pad(row[0], widths[0]),
            _pad(row[1], widths[1]),
            _pad(row[2], widths[2], right=True),
            _pad(row[3], widths[3]),
            row[4],
        ]
        lines.append("  ".join(cells).rstrip())
        if n == 0:
            lines.append("  ".join("-" * w for w in widths) + "  ----")
    return "\n".join(lines)


def _width(text: str) -> int:
    import unicodedata

    return sum(2 if unicodedata.east_asian_width(ch) in "WF" else 1 for ch in text)


def _pad(text: str, width: int, right: bool = False) -> str:
    gap = " " * (width - _width(text))
    return gap + text if right else text + gap


# ---- a synthetic district ----------------------------------------------------------------------

_PLACES = [
    "城关",
    "东城",
    "西湖",
    "南山",
    "北岭",
    "青石",
    "白沙",
    "金桥",
    "柳园",
    "桃源",
    "石门",
    "龙泉",
    "清河",
    "凤凰",
    "梅林",
    "松岗",
    "竹溪",
    "兰亭",
    "长乐",
    "永安",
]
_TOWN_KINDS = ["镇", "街道", "乡", "社区"]
_DEPTS = [
    "教育",
    "卫健",
    "公安",
    "民政",
    "财政",
    "人社",
    "住建",
    "交通",
    "水利",
    "农业",
    "商务",
    "文旅",
    "应急",
    "市场监管",
    "统计",
    "医保",
    "城管",
    "税务",
    "司法",
    "审计",
]
_SURNAMES = "王李张刘陈杨黄赵周吴徐孙马朱胡郭何林罗高"
_GIVEN = [
    "芳",
    "磊",
    "强",
    "敏",
    "丽",
    "刚",
    "洁",
    "静",
    "伟",
    "娜",
    "军",
    "勇",
    "艳",
    "杰",
    "涛",
    "明",
    "霞",
    "平",
    "辉",
    "玲",
]


@dataclass(frozen=True)
class Person:
    """A unit and its (main) liaison, who is known by contact id."""

    unit: str
    kind: str
    name: str
    contact_id: str
    wechat_name: str


def unit_names(n: int) -> list[tuple[str, str]]:
    """`n` distinct, realistic unit names with their kind: towns first, then district departments, then stations."""
    names = [(p + k, "镇街") for k in _TOWN_KINDS for p in _PLACES]
    names += [(f"区{d}局", "区直单位") for d in _DEPTS]
    names += [(f"{p}{d}所", "其他") for p in _PLACES for d in _DEPTS]
    if n > len(names):
        raise ValueError(f"at most {len(names)} units")
    return names[:n]


def district(n: int) -> list[Person]:
    """`n` units, each with one liaison whose WeChat id is on the roster."""
    people = []
    for i, (unit, kind) in enumerate(unit_names(n)):
        name = _SURNAMES[i % len(_SURNAMES)] + _GIVEN[(i // len(_SURNAMES)) % len(_GIVEN)] + ("" if i < 400 else "二")
        people.append(Person(unit, kind, name, f"wxid_bench_{i:04d}", f"{name}-{unit}"))
    return people


def write_roster_csv(people: list[Person], path: Path) -> Path:
    """The roster as the office would export it from Excel (CSV UTF-8)."""
    with path.open("w", newline="", encoding="utf-8-sig") as fh:
        out = csv.writer(fh)
        out.writerow(["单位", "类别", "联络员", "微信ID", "微信昵称", "手机", "角色"])
        for i, p in enumerate(people):
            out.writerow([p.unit, p.kind, p.name, p.contact_id, p.wechat_name, f"1380000{i:04d}", "主"])
    return path


def import_people(engine, people: list[Person]) -> None:
    """Import the roster in-process (the same code as `relaybot roster import`)."""
    from bot.domain.roster import RosterRow, import_roster
    from bot.storage.db import session

    rows = [
        RosterRow(i + 2, p.unit, p.kind, p.name, p.contact_id, p.wechat_name, "", "主") for i, p in enumerate(people)
    ]
    with session(engine) as s:
        import_roster(s, rows)
        s.commit()


def add_open_pushes(engine, count: int, *, now: datetime, deadline: datetime | None = None) -> list[int]:
    """`count` open pushes of one library alert, made directly in the database; returns their numbers."""
    from bot.content import load_library
    from bot.domain.relay import create_push
    from bot.storage.db import session
    from bot.storage.models import Alert

    item = load_library().find("刷单")
    ids = []
    with session(engine) as s:
        alert = Alert(case_type=item.case_type, title=item.title, text=item.body, created_at=now)
        for _ in range(count):
            ids.append(create_push(s, alert, now=now, by="bench", deadline=deadline or now + timedelta(days=1)).id)
        s.commit()
    return ids


# ---- the real gateway and the bot as a process ----------------------------------------------


def open_gateway(people: list[Person]):
    """A running Node Wechaty gateway with the admin, the liaisons, one liaison room and the office room."""
    from tests.gateway_harness import Gateway

    gw = Gateway.start()
    try:
        gw.contact(ADMIN_ID, ADMIN_NAME)
        for p in people:
            gw.contact(p.contact_id, p.wechat_name)
        gw.room(LIAISON_ROOM, LIAISON_ROOM_NAME, [ADMIN_ID, *(p.contact_id for p in people)])
        gw.room(OFFICE_ROOM, OFFICE_ROOM_NAME, [ADMIN_ID])
    except BaseException:
        gw.stop()
        raise
    return gw


def bot_env(gw, db_url: str, workdir: Path, **extra: str) -> dict[str, str]:
    """The environment of a bot process connected to `gw`, serving its two rooms."""
    env = {
        "WECHATY_PUPPET_SERVICE_ENDPOINT": gw.endpoint,
        "WECHATY_PUPPET_SERVICE_TOKEN": gw.token,
        "RELAYBOT_DATABASE_URL": db_url,
        "RELAYBOT_ADMIN_IDS": ADMIN_ID,
        "RELAYBOT_LIAISON_GROUPS": LIAISON_ROOM_NAME,
        "RELAYBOT_OFFICE_GROUP": OFFICE_ROOM_NAME,
        "RELAYBOT_CACHE_DIR": str(workdir / "cache"),
        "RELAYBOT_EVIDENCE_DIR": str(workdir / "evidence"),
        "RELAYBOT_CONFIG": str(workdir / "no-such-relaybot.toml"),  # never a relaybot.toml from the checkout
    }
    env.update(extra)
    return env


def import_roster_cli(people: list[Person], db_url: str, workdir: Path) -> None:
    """`relaybot roster import` in a clean process, as an office would set up a new database."""
    from tests.bot_process import relaybot

    done = relaybot(
        "roster", "import", str(write_roster_csv(people, workdir / "roster.csv")), db_url=db_url, cwd=workdir
    )
    if done.returncode != 0:
        raise RuntimeError(f"roster import failed:\n{done.stdout}\n{done.stderr}")


def proc_memory_kb(pid: int) -> dict[str, int]:
    """VmRSS and VmHWM (peak RSS) of a process, in KiB, from /proc/PID/status."""
    found = {}
    with open(f"/proc/{pid}/status", encoding="ascii", errors="replace") as fh:
        for line in fh:
            key, _, rest = line.partition(":")
            if key in ("VmRSS", "VmHWM"):
                found[key] = int(rest.split()[0])
    return found


def mapped_files(pid: int) -> set[str]:
    """The files a process has mapped (shared libraries included)."""
    paths = set()
    with open(f"/proc/{pid}/maps", encoding="utf-8", errors="replace") as fh:
        for line in fh:
            parts = line.split(maxsplit=5)
            if len(parts) == 6 and parts[5].startswith("/"):
                paths.add(parts[5].strip())
    return paths


def cpu_count() -> int:
    return os.cpu_count() or 1
