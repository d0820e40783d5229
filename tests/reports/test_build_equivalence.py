"""build_report gives the very same Report as before it was made faster (issue 14: the console's 通报 page).

`reference_report` below is a frozen copy of build_report (and `reference_expected_units` of relay.expected_units)
as they were before the per-push x unit loops over ORM Unit objects were replaced by sets of plain ids. Both run on
a month with every awkward case in it: 免转 (also of inactive units, and of every unit of one push), 补登 (on time
and 迟报), 撤销, late confirmations, units made inactive after confirming, withdrawn and open pushes, pushes
outside the period, screenshots with and without verdicts, confirmations of exempted units, runs of misses. The
whole Report is compared: units, pushes, boards, escalations, evidence and corrections.
"""

from __future__ import annotations

import dataclasses
import random
import statistics
from collections import defaultdict
from collections.abc import Sequence
from datetime import date, datetime, time, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import DateTime, Row, type_coerce
from sqlalchemy import select as sa_select
from sqlmodel import col, select

from bot.domain.corrections import add_confirmation, exempt, revoke
from bot.domain.escalation import REPORTED_LEVELS, Ladder, close_push, standings
from bot.domain.relay import active_units, expected_counts, expected_unit_ids, expected_units
from bot.reports.build import _title, build_report
from bot.reports.figures import CorrectionRow, EvidenceRow, PushRow, Report, UnitRow
from bot.reports.ranking import draw_board, on_black_list, on_red_list, ranked_order
from bot.storage.db import session
from bot.storage.models import (
    Alert,
    Confirmation,
    ConfirmMethod,
    Correction,
    Exemption,
    Liaison,
    Push,
    PushState,
    PushTarget,
    Unit,
)
from tests.conftest import TZ

_RAW_TIME = DateTime(timezone=True)

# ---- the implementation before the change, frozen ------------------------------------------------


def reference_expected_units(session, push_ids):
    ids = list(dict.fromkeys(push_ids))
    if not ids:
        return {}
    units = active_units(session)
    exempted: dict[int, set[int]] = defaultdict(set)
    for push_id, unit_id in session.exec(
        select(Exemption.push_id, Exemption.unit_id).where(col(Exemption.push_id).in_(ids))
    ):
        exempted[push_id].add(unit_id)
    aimed: dict[int, set[int]] = defaultdict(set)  # targeted pushes (issue 15): only their units
    for push_id, unit_id in session.exec(
        select(PushTarget.push_id, PushTarget.unit_id).where(col(PushTarget.push_id).in_(ids))
    ):
        aimed[push_id].add(unit_id)
    return {
        push_id: [
            u for u in units if u.id not in exempted[push_id] and (push_id not in aimed or u.id in aimed[push_id])
        ]
        for push_id in ids
    }


def reference_report(
    session, *, kind: str, start: date, end: date, now: datetime, tz: ZoneInfo, ladder: Ladder
) -> Report:
    """Figures for the pushes whose deadline fell in [start, end] (local days), as known at `now`.

    Reads plain columns, not ORM objects: a month of a large district is 100 000 confirmations.
    """
    lo = datetime.combine(start, time(0), tzinfo=tz)
    hi = datetime.combine(end + timedelta(days=1), time(0), tzinfo=tz)
    # created_at twice: as an aware datetime for the report, and as the driver gives it (naive UTC on SQLite,
    # aware on PostgreSQL) for subtracting the confirmations' times read the same way below.
    # SQLAlchemy's select for more than four columns (sqlmodel's is typed for up to four), so session.execute,
    # which session.exec calls for it anyway.
    pushes = session.execute(
        sa_select(
            col(Push.id),
            col(Push.created_at),
            col(Push.deadline),
            col(Alert.title),
            type_coerce(col(Push.created_at), _RAW_TIME).label("created_raw"),
        )
        .outerjoin(Alert, col(Alert.id) == Push.alert_id)
        .where(col(Push.deadline) >= lo, col(Push.deadline) < hi, col(Push.state) != PushState.WITHDRAWN.value)
        .order_by(col(Push.id))
    ).all()
    push_ids = [p[0] for p in pushes]
    pushed_at = {p[0]: p[4] for p in pushes}
    expected = reference_expected_units(session, push_ids)
    expected_ids = {push_id: {u.id for u in us} for push_id, us in expected.items()}
    by_push: dict[int, set[int]] = {p: set() for p in push_ids}
    added_by_push: dict[int, set[int]] = {p: set() for p in push_ids}
    # unit id -> [confirmations, late ones, minutes from push to confirmation of each, 补登 among them]
    by_unit: dict[int, list] = {}
    evidence_rows: Sequence[tuple[int, int, str, str]] = []
    correction_rows: Sequence[Row[*tuple[Any, ...]]] = []
    if push_ids:
        # Through the session's connection (Core): plain rows, without the ORM's per-row bookkeeping.
        confs = session.connection().execute(
            sa_select(
                col(Confirmation.push_id),
                col(Confirmation.unit_id),
                type_coerce(col(Confirmation.at), _RAW_TIME),
                col(Confirmation.late),
                col(Confirmation.method),
            ).where(col(Confirmation.push_id).in_(push_ids))
        )
        for push_id, unit_id, at, is_late, method in confs:
            if unit_id not in expected_ids[push_id]:
                continue  # an inactive unit, or one exempted from the push: not counted either way
            by_push[push_id].add(unit_id)
            mine = by_unit.get(unit_id)
            if mine is None:
                mine = by_unit[unit_id] = [0, 0, [], 0]
            mine[0] += 1
            mine[1] += bool(is_late)
            if method == ConfirmMethod.OFFICE.value:
                # The time the office recorded it is not the time the unit relayed: no part of the median.
                mine[3] += 1
                added_by_push[push_id].add(unit_id)
            else:
                mine[2].append((at - pushed_at[push_id]).total_seconds() / 60)
        evidence_rows = session.exec(
            select(
                col(Confirmation.push_id),
                col(Confirmation.unit_id),
                col(Confirmation.verdict),
                col(Confirmation.verdict_reason),
            )
            .where(
                col(Confirmation.push_id).in_(push_ids),
                (col(Confirmation.evidence_file) != "") | (col(Confirmation.verdict) != ""),
                # Seen in a unit group (已核验 by observation): no screenshot to count.
                col(Confirmation.method) != ConfirmMethod.OBSERVED.value,
            )
            .order_by(col(Confirmation.push_id), col(Confirmation.id))
        ).all()
        correction_rows = session.execute(  # seven columns: SQLAlchemy's select, as for the pushes above
            sa_select(
                col(Correction.push_id),
                col(Unit.name),
                col(Correction.kind),
                col(Correction.reason),
                col(Correction.by_name),
                col(Correction.by_id),
                col(Correction.at),
            )
            .join(Unit, col(Unit.id) == Correction.unit_id)
            .where(col(Correction.push_id).in_(push_ids))
            .order_by(col(Correction.at), col(Correction.id))
        ).all()
    # A primary key read from the database is never None (the `is not None` is for the type checker).
    units = [
        (unit_id, name, unit_kind)
        for unit_id, name, unit_kind in session.exec(
            select(col(Unit.id), col(Unit.name), col(Unit.kind)).where(Unit.active == True).order_by(col(Unit.id))  # noqa: E712
        )
        if unit_id is not None
    ]
    levels = standings(session, as_of=now, tz=tz, ladder=ladder)

    aimed: dict[int, set[int]] = defaultdict(set)  # targeted pushes: a unit not aimed at is neither 免转 nor received
    for push_id, unit_id in session.exec(
        select(PushTarget.push_id, PushTarget.unit_id).where(col(PushTarget.push_id).in_(push_ids))
    ):
        aimed[push_id].add(unit_id)

    def not_aimed(push_id: int, unit_id: int) -> bool:
        return push_id in aimed and unit_id not in aimed[push_id]

    rows: list[dict] = []
    for unit_id, name, unit_kind in units:
        relayed, late, minutes, added = by_unit.get(unit_id, (0, 0, [], 0))
        skipped = sum(1 for push_id in push_ids if not_aimed(push_id, unit_id))
        if push_ids and skipped == len(push_ids):
            continue  # no push of the period was aimed at it: not in the report
        exempted = sum(1 for push_id in push_ids if unit_id not in expected_ids[push_id]) - skipped
        received = len(pushes) - exempted - skipped
        rows.append(
            dict(
                unit=name,
                kind=unit_kind,
                received=received,
                relayed=relayed,
                on_time=relayed - late,
                late=late,
                missed=received - relayed,
                median_minutes=round(statistics.median(minutes), 1) if minutes else None,
                level=levels[unit_id].level if unit_id in levels else "",
                added=added,
                exempted=exempted,
            )
        )
    # Best first, ties sharing a rank, by the one rule of bot/reports/ranking.py.
    ranked = [dataclasses.replace(u, rank=rank) for rank, u in ranked_order([UnitRow(rank=0, **row) for row in rows])]
    red = draw_board(ranked, eligible=on_red_list, worst_first=False)
    black = draw_board(ranked, eligible=on_black_list, worst_first=True)
    # In ranking order, like every list of the report: not the roster file's order.
    escalations = {level: [u.unit for u in ranked if u.level == level] for level in REPORTED_LEVELS}
    unit_names = {unit_id: name for unit_id, name, _ in units}
    push_rows = []
    for push_id, created_at, deadline, title, _ in pushes:
        done = by_push[push_id]
        mine = expected[push_id]
        push_rows.append(
            PushRow(
                n=push_id,
                title=title if title is not None else "",
                pushed_at=created_at,
                deadline=deadline,
                confirmed=sum(1 for u in mine if u.id in done),  # the expected units that confirmed
                total=len(mine),
                missing_units=[u.name for u in mine if u.id not in done],
                added_units=[u.name for u in mine if u.id in added_by_push[push_id]],
                exempted_units=[
                    name
                    for unit_id, name in unit_names.items()
                    if unit_id not in expected_ids[push_id] and not not_aimed(push_id, unit_id)
                ],
            )
        )
    evidence = [
        EvidenceRow(push_id, unit_names.get(unit_id, "?"), verdict, reason)
        for push_id, unit_id, verdict, reason in evidence_rows
    ]
    corrections = [
        CorrectionRow(push_id, unit, kind, reason, by_name or by_id, at)
        for push_id, unit, kind, reason, by_name, by_id, at in correction_rows
    ]
    return Report(
        kind=kind,
        title=_title(kind, start, end),
        period_start=start,
        period_end=end,
        generated_at=now,
        units=ranked,
        pushes=push_rows,
        red=red.units,
        black=black.units,
        red_named=red.named,
        black_named=black.named,
        escalations={k: v for k, v in escalations.items() if v},
        evidence=evidence,
        corrections=corrections,
    )


# ---- a varied month ------------------------------------------------------------------------------

ADMIN_ID, ADMIN_NAME = "admin-chen", "陈静"


def make_month(engine, seed: int, evidence_dir: Path, *, units: int = 14) -> None:
    """Pushes from late October to early December, most of them in November, as the bot would record them."""
    rng = random.Random(seed)
    with session(engine) as s:
        unit_rows = [Unit(name=f"单位{i:02d}<b>", kind=rng.choice(["镇街", "区直单位", "其他"])) for i in range(units)]
        s.add_all(unit_rows)
        s.flush()
        liaisons = {}
        for u in unit_rows:
            liaison = Liaison(unit_id=u.id, name=f"联络员{u.id}")
            s.add(liaison)
            s.flush()
            liaisons[u.id] = liaison.id
        sleeper = unit_rows[1]  # stops confirming for most of November: a run, and escalations
        pushes: list[Push] = []
        day = date(2026, 10, 26)
        while day <= date(2026, 12, 3):
            for _ in range(rng.choice([0, 1, 2, 3])):
                created = datetime.combine(day, time(9), tzinfo=TZ) + timedelta(minutes=rng.randrange(0, 420))
                deadline = datetime.combine(day, time(18), tzinfo=TZ) + timedelta(days=rng.choice([0, 0, 0, 1]))
                alert = Alert(case_type="刷单", title=rng.choice(["刷单返利", "=1+1 冒充客服", ""]), created_at=created)
                s.add(alert)
                s.flush()
                push = Push(alert_id=alert.id, created_at=created, deadline=deadline, state=PushState.OPEN.value)
                s.add(push)
                s.flush()
                pushes.append(push)
                for u in unit_rows:
                    quiet = u is sleeper and date(2026, 11, 3) <= day <= date(2026, 11, 28)
                    if quiet or rng.random() > 0.8:
                        continue
                    late = rng.random() < 0.15
                    at = (
                        deadline + timedelta(minutes=rng.randrange(1, 3000))
                        if late
                        else created + timedelta(seconds=rng.randrange(1, int((deadline - created).total_seconds())))
                    )
                    at += timedelta(microseconds=rng.randrange(1_000_000))
                    shot = rng.random() < 0.3
                    s.add(
                        Confirmation(
                            push_id=push.id,
                            unit_id=u.id,
                            liaison_id=liaisons[u.id],
                            at=at,
                            method=ConfirmMethod.IMAGE.value if shot else rng.choice(["text", "quote", "note"]),
                            late=late,
                            evidence_file=f"{push.id}-{u.id}.jpg" if shot and rng.random() < 0.8 else "",
                            verdict=rng.choice(["", "已核验", "存疑"]) if shot else "",
                            verdict_reason=rng.choice(["", "截图中有推送标题"]),
                        )
                    )
            day += timedelta(days=1)
        s.flush()
        # Targeted pushes (给 学校): every fourth aimed at a few units; the others' confirmations stay in the
        # table (a liaison of another unit answering) and must not count. Its own random stream: the rest of the
        # month is drawn as before.
        aim = random.Random(seed + 1000)
        for push in pushes[::4]:
            chosen = aim.sample(unit_rows, aim.randint(2, max(2, units // 2)))
            push.target = "、".join(u.name for u in chosen)
            s.add(push)
            s.add_all(PushTarget(push_id=push.id, unit_id=u.id) for u in chosen)
        s.flush()
        # The office's corrections, through the same functions as the chat commands and the console.
        for i, push in enumerate(pushes):
            confirmed = set(s.exec(select(Confirmation.unit_id).where(Confirmation.push_id == push.id)))
            everyone_exempted = i == len(pushes) // 2  # a push of mid-November: nobody expected
            for u in unit_rows:
                roll = rng.random()
                when = push.deadline + timedelta(hours=rng.choice([-2, 3, 30]))
                args = dict(
                    session=s, push=push, unit=u, by_id=ADMIN_ID, by_name=rng.choice([ADMIN_NAME, ""]), now=when
                )
                if everyone_exempted:
                    if u.id in confirmed:
                        revoke(reason="误记", evidence_dir=evidence_dir, **args)
                    exempt(reason="全部免转", **args)
                elif u.id not in confirmed and roll < 0.08:
                    exempt(reason="停业整顿", **args)
                elif u.id not in confirmed and roll < 0.16:
                    add_confirmation(reason=rng.choice(["电话确认", "电话确认，迟报"]), **args)
                elif u.id in confirmed and roll < 0.03:
                    revoke(reason="误记", evidence_dir=evidence_dir, **args)
            if rng.random() < 0.1:  # an exemption taken back
                exempted = s.exec(select(Exemption.unit_id).where(Exemption.push_id == push.id)).first()
                if exempted is not None:
                    unit = s.get(Unit, exempted)
                    revoke(
                        session=s, push=push, unit=unit, reason="", by_id=ADMIN_ID, by_name=ADMIN_NAME,
                        now=push.deadline, evidence_dir=evidence_dir,
                    )  # fmt: skip
        # A liaison who confirms after the office exempted the unit: the confirmation does not count.
        for exemption in s.exec(select(Exemption)).all()[::5]:
            if (
                s.exec(
                    select(Confirmation.id).where(
                        Confirmation.push_id == exemption.push_id, Confirmation.unit_id == exemption.unit_id
                    )
                ).first()
                is None
            ):
                s.add(
                    Confirmation(
                        push_id=exemption.push_id,
                        unit_id=exemption.unit_id,
                        liaison_id=liaisons[exemption.unit_id],
                        at=exemption.at + timedelta(minutes=5),
                        method="text",
                    )
                )
        # Deadlines close the pushes (misses on record), a few are withdrawn, those of December stay open.
        for push in pushes:
            if push.deadline < datetime(2026, 12, 1, tzinfo=TZ):
                if rng.random() < 0.06:
                    push.state = PushState.WITHDRAWN.value
                    s.add(push)
                else:
                    close_push(s, push, now=push.deadline)
        # Units that left the roster after confirming (and after being exempted) in November.
        for u in unit_rows[-3:]:
            u.active = False
            s.add(u)
        s.commit()


CASES = [
    ("day", date(2026, 11, 26), date(2026, 11, 26)),
    ("week", date(2026, 11, 23), date(2026, 11, 29)),
    ("month", date(2026, 11, 1), date(2026, 11, 30)),
    ("month", date(2026, 10, 1), date(2026, 10, 31)),
    ("month", date(2026, 12, 1), date(2026, 12, 31)),  # open pushes
    ("week", date(2027, 1, 4), date(2027, 1, 10)),  # no pushes at all
]


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_build_report_gives_the_same_report_as_the_frozen_reference(engine, seed, tmp_path):
    make_month(engine, seed, tmp_path)
    ladder = Ladder(2, 3, 2)
    seen = defaultdict(int)
    for kind, start, end in CASES:
        now = datetime.combine(end + timedelta(days=1), time(9), tzinfo=TZ)
        with session(engine) as s:
            expected = reference_report(s, kind=kind, start=start, end=end, now=now, tz=TZ, ladder=ladder)
        with session(engine) as s:
            got = build_report(s, kind=kind, start=start, end=end, now=now, tz=TZ, ladder=ladder)
        for field in dataclasses.fields(Report):  # field by field first, for a readable failure
            assert getattr(got, field.name) == getattr(expected, field.name), (kind, start, field.name)
        assert got == expected
        seen["pushes"] += len(expected.pushes)
        seen["exempted"] += sum(bool(p.exempted_units) for p in expected.pushes)
        seen["nobody expected"] += sum(p.total == 0 for p in expected.pushes)
        seen["added"] += sum(bool(p.added_units) for p in expected.pushes)
        seen["late"] += sum(u.late for u in expected.units)
        seen["evidence"] += len(expected.evidence)
        seen["corrections"] += len({c.kind for c in expected.corrections})
        seen["escalations"] += len(expected.escalations)
        seen["red"] += len(expected.red)
        seen["black"] += len(expected.black)
    # The comparison had every case in it (a control: a month without them would prove nothing).
    assert seen["pushes"] > 40 and seen["exempted"] > 5 and seen["added"] > 5, seen
    assert all(seen[k] for k in ("nobody expected", "late", "evidence", "escalations", "red", "black")), seen
    assert seen["corrections"] >= 4, seen  # 补登, 免转 and 撤销, in more than one period


def test_the_month_has_what_the_comparison_needs(engine, tmp_path):
    make_month(engine, 1, tmp_path)
    with session(engine) as s:
        withdrawn = s.exec(select(Push).where(Push.state == PushState.WITHDRAWN.value)).all()
        inactive = s.exec(select(Unit.id).where(Unit.active == False)).all()  # noqa: E712
        exempted_pairs = set(s.exec(select(Exemption.push_id, Exemption.unit_id)).all())
        confirmed_pairs = set(s.exec(select(Confirmation.push_id, Confirmation.unit_id)).all())
        office = s.exec(select(Confirmation).where(Confirmation.method == ConfirmMethod.OFFICE.value)).all()
        inactive_confirmed = s.exec(select(Confirmation.id).where(col(Confirmation.unit_id).in_(inactive))).all()
    assert withdrawn and inactive and inactive_confirmed
    assert exempted_pairs & confirmed_pairs  # confirmations of exempted units
    assert {c.late for c in office} == {True, False}  # 补登 on time and 迟报


@pytest.mark.parametrize("seed", [1, 2])
def test_expected_unit_ids_are_expected_units(engine, seed, tmp_path):
    # One rule: expected_units is expected_unit_ids with the Unit rows, in the same (roster) order.
    make_month(engine, seed, tmp_path)
    with session(engine) as s:
        push_ids = [p for p in s.exec(select(Push.id).order_by(col(Push.id)))] + [999_999]
        ids = expected_unit_ids(s, push_ids)
        units = expected_units(s, push_ids)
        frozen = reference_expected_units(s, push_ids)
        assert expected_unit_ids(s, []) == {} and expected_units(s, []) == {}
    assert ids == {p: [u.id for u in us] for p, us in units.items()}
    assert ids == {p: [u.id for u in us] for p, us in frozen.items()}
    assert len({len(v) for v in ids.values()}) > 2  # pushes with none, one or more units exempted


@pytest.mark.parametrize("seed", [1, 2])
def test_expected_counts_count_what_expected_unit_ids_lists(engine, seed, tmp_path):
    # The console's push list counts in the database; the rule is expected_unit_ids's.
    make_month(engine, seed, tmp_path)
    with session(engine) as s:
        push_ids = [p for p in s.exec(select(Push.id).order_by(col(Push.id)))]
        counts = expected_counts(s, push_ids)
        ids = expected_unit_ids(s, push_ids)
        confirmed = set(s.exec(select(Confirmation.push_id, Confirmation.unit_id)).all())
        assert expected_counts(s, []) == {}
    want = {p: (len(units), sum((p, u) in confirmed for u in units)) for p, units in ids.items()}
    assert counts == want
    assert any(total < max(t for t, _ in want.values()) for total, _ in want.values())  # exemptions were in it
    assert any(done < total for total, done in want.values()) and any(done for _, done in want.values())
