"""Reach rules on a real database: what counts as the alert forwarded, and 覆盖人数 in the reports."""

from __future__ import annotations

import io
from datetime import date, datetime, timedelta

from openpyxl import load_workbook
from sqlmodel import select

from bot.content import load_texts
from bot.domain import reach
from bot.domain.escalation import Ladder
from bot.domain.reach import Seen, observe_forward, reach_by_unit, reach_of_push
from bot.domain.relay import create_push, withdraw_push
from bot.reports.build import build_report
from bot.reports.render import render_xlsx
from bot.reports.text import report_text
from bot.storage.db import session
from bot.storage.models import Alert, Confirmation, Exemption, Push, ReachSighting, Unit, pk
from tests.conftest import TZ

NOW = datetime(2026, 11, 26, 9, 0, tzinfo=TZ)
LINK = "https://mp.weixin.qq.com/s/abc"


def setup(s):
    units = [Unit(name=n) for n in ("城关镇", "东城街道", "西湖镇")]
    s.add_all(units)
    s.flush()
    return units


def alert(
    title="警惕刷单返利陷阱，先垫付必被骗", text="刷单就是诈骗。所有网络刷单都是诈骗，先垫付后返利必被骗。", link=""
):
    return Alert(title=title, text=text, link_url=link, created_at=NOW)


def push_of(s, a, *, at=NOW, hours=9):
    return create_push(s, a, now=at, by="admin", deadline=at + timedelta(hours=hours))


def group(s, units, unit_index, room):
    return reach.make_unit_group(s, room_id=room, name=room, unit_id=pk(units[unit_index]))


def test_the_same_link_card_the_text_or_the_title_is_the_alert_and_nothing_else_is(engine):
    with session(engine) as s:
        units = setup(s)
        g = group(s, units, 0, "g1@chatroom")
        p_link = push_of(s, alert(title="反诈宣传文章", text="", link=LINK))
        p_text = push_of(s, alert())
        seen = lambda **kw: {x.push_id for x in observe_forward(s, group=g, seen=Seen(**kw), now=NOW)}  # noqa: E731
        assert seen(text="刷单") == set()  # a word of the case
        assert seen(text="反诈宣传") == set()  # too short a part of a title
        assert seen(link_url="https://example.com/other", link_title="别的文章") == set()
        assert seen(link_url=LINK, link_title="随便什么标题") == {pk(p_link)}
        assert seen(text="【反诈预警 #2】……\n刷单就是诈骗。所有网络刷单都是诈骗，先垫付后返利必被骗！\n——截止") == {
            pk(p_text)
        }
        assert seen(text="警惕刷单返利陷阱，先垫付必被骗") == set()  # already seen in this group: stored once
        g2 = group(s, units, 0, "g2@chatroom")
        # The title alone, in a card's title (full-width punctuation and spaces do not matter).
        found = observe_forward(s, group=g2, seen=Seen(link_title="警惕 刷单返利陷阱！先垫付必被骗"), now=NOW)
        assert [x.push_id for x in found] == [pk(p_text)]
        assert len(s.exec(select(Confirmation)).all()) == 2  # one per push: the second group adds a sighting only
        assert len(s.exec(select(ReachSighting)).all()) == 3


def test_only_pushes_the_unit_is_expected_to_relay_and_can_still_confirm_are_watched(engine):
    with session(engine) as s:
        units = setup(s)
        g = group(s, units, 1, "g@chatroom")
        exempted = push_of(s, alert(title="一一一一一一一一", text=""))
        s.add(Exemption(push_id=pk(exempted), unit_id=pk(units[1]), at=NOW))
        withdrawn = push_of(s, alert(title="二二二二二二二二", text=""))
        withdraw_push(s, withdrawn)
        old = push_of(s, alert(title="三三三三三三三三", text=""), at=NOW - timedelta(days=30))
        old.state = "closed"
        s.add(old)
        s.flush()
        text = "一一一一一一一一 二二二二二二二二 三三三三三三三三"
        assert observe_forward(s, group=g, seen=Seen(text=text), now=NOW) == []
        assert s.exec(select(Confirmation)).all() == []


def test_reach_counts_each_group_once_at_its_largest_and_only_the_periods_pushes(engine):
    with session(engine) as s:
        units = setup(s)
        g1, g2, g3 = (
            group(s, units, 0, "a@chatroom"),
            group(s, units, 0, "b@chatroom"),
            group(s, units, 1, "c@chatroom"),
        )
        p1, p2 = (
            push_of(s, alert(title="甲甲甲甲甲甲甲甲", text="")),
            push_of(s, alert(title="乙乙乙乙乙乙乙乙", text="")),
        )
        later = push_of(s, alert(title="丙丙丙丙丙丙丙丙", text=""), at=NOW + timedelta(days=10))
        gone = push_of(s, alert(title="丁丁丁丁丁丁丁丁", text=""))
        counts = {}
        for g, title, count in [
            (g1, "甲甲甲甲甲甲甲甲", 40),
            (g1, "乙乙乙乙乙乙乙乙", 42),  # the same group later, a little bigger: counted once, at 42
            (g2, "甲甲甲甲甲甲甲甲", 100),
            (g3, "乙乙乙乙乙乙乙乙", 7),
            (g3, "丙丙丙丙丙丙丙丙", 500),  # a push of another period
            (g3, "丁丁丁丁丁丁丁丁", 300),  # withdrawn later
        ]:
            ids = [pk(x) for x in observe_forward(s, group=g, seen=Seen(text=title), now=NOW + timedelta(days=10))]
            reach.set_member_count(s, ids, count)
            counts[(g.room_id, title)] = ids
        withdraw_push(s, gone)
        s.commit()
        lo, hi = datetime(2026, 11, 1, tzinfo=TZ), datetime(2026, 12, 1, tzinfo=TZ)
        assert reach_by_unit(s, lo=lo, hi=hi) == {pk(units[0]): 142, pk(units[1]): 7}
        assert reach_of_push(s, pk(p1)) == (1, 140)
        assert reach_of_push(s, pk(p2)) == (2, 49)
        assert reach_of_push(s, pk(later)) == (1, 500)

        report = build_report(
            s, kind="month", start=date(2026, 11, 1), end=date(2026, 11, 30), now=NOW, tz=TZ, ladder=Ladder(2, 3, 2)
        )
    reached = {u.unit: u.reached for u in report.units}
    assert reached == {"城关镇": 142, "东城街道": 7, "西湖镇": 0}
    assert "单位群覆盖人数：149 人（2 个单位）" in report_text(load_texts(), report)
    sheet = load_workbook(io.BytesIO(render_xlsx(report, TZ)))["单位排名"]
    header = [c.value for c in sheet[1]]
    column = header.index("覆盖人数")
    by_unit = {row[1].value: row[column].value for row in sheet.iter_rows(min_row=2)}
    assert by_unit == {"城关镇": 142, "东城街道": 7, "西湖镇": None}


def test_a_period_without_sightings_has_no_reach_line(engine):
    with session(engine) as s:
        setup(s)
        push_of(s, alert())
        s.commit()
        report = build_report(
            s, kind="month", start=date(2026, 11, 1), end=date(2026, 11, 30), now=NOW, tz=TZ, ladder=Ladder(2, 3, 2)
        )
        assert s.exec(select(Push)).one()
    assert all(u.reached == 0 for u in report.units)
    assert "覆盖人数" not in report_text(load_texts(), report)


def test_an_observed_confirmation_has_a_name_wherever_methods_are_shown():
    from bot.reports.verify import method_name
    from bot.web.views import METHODS

    assert method_name(load_texts(), "observed") == "单位群看到"
    assert METHODS["observed"] == "单位群看到"
