"""Issue 15 item 1: targeted pushes (精准滴灌). `推送 刷单 给 学校,医院` is sent to the groups of those units'
liaisons and expects only them: confirmations, 进度, reminders, misses, corrections and records count no other."""

from __future__ import annotations

from datetime import datetime

import pytest
from sqlmodel import col, select

from bot.domain.records import unit_records
from bot.domain.relay import expected_counts, expected_unit_ids, not_expected
from bot.domain.roster import import_roster, read_roster
from bot.storage.db import session
from bot.storage.models import AuditLog, Confirmation, Exemption, Miss, Push, PushTarget, ScheduledPush, Unit
from tests.conftest import ADMIN, LI, LIAISON_ROOM, OFFICE_ROOM, SUN, TZ, WANG, WU, ZHENG

# The example district with a 标签 column, typed the way clerks do (two separators, a blank).
TAGGED = """单位,类别,联络员,微信ID,微信昵称,手机,角色,标签
城关镇,镇街,王芳,wxid_wangfang,王芳-城关镇,13800000001,主,
城关镇,镇街,赵磊,,赵磊,13800000002,备,
东城街道,镇街,李强,wxid_liqiang,李强,13800000003,主,
西湖镇,镇街,周敏,,周敏（西湖镇）,13800000004,主,
区教育局,区直单位,孙丽,wxid_sunli,孙丽,13800000005,主,学校
区卫健局,区直单位,吴刚,,吴刚,13800000006,主,医院， 学校
金融行业,行业,郑洁,wxid_zhengjie,郑洁,13800000007,主,银行
"""


@pytest.fixture
def tagged(engine, roster):
    read = read_roster("名单.csv", TAGGED.encode())
    with session(engine) as s:
        import_roster(s, read.rows, columns=read.columns)
        s.commit()


async def command(bot, transport, text: str) -> str:
    """An admin's command in the office group; the bot's one answer to it."""
    transport.sent.clear()
    await transport.say(ADMIN, text, room_id=OFFICE_ROOM)
    await bot.send_pending()
    answers = [o.text for o in transport.sent if o.chat_id == OFFICE_ROOM and o.text]
    assert len(answers) == 1, answers
    return answers[0]


def confirmed(engine, push_id: int = 1) -> list[str]:
    with session(engine) as s:
        rows = s.exec(select(Confirmation).where(Confirmation.push_id == push_id)).all()
        return sorted(s.get_one(Unit, c.unit_id).name for c in rows)


def unit_id(s, name: str) -> int:
    return s.exec(select(Unit.id).where(Unit.name == name)).one()


def test_the_tags_column_is_read_kept_and_changes_reported(engine, roster, tagged):
    with session(engine) as s:
        tags = {u.name: u.tags for u in s.exec(select(Unit))}
    assert tags["区卫健局"] == "医院、学校" and tags["区教育局"] == "学校" and tags["城关镇"] == ""
    # A roster without the column keeps the tags; one with a changed cell says so.
    plain = read_roster("名单.csv", TAGGED.replace(",标签", "").replace(",学校\n", "\n").encode())
    with session(engine) as s:
        report = import_roster(s, plain.rows, columns=plain.columns)
        s.commit()
        assert s.exec(select(Unit.tags).where(Unit.name == "区教育局")).one() == "学校"
    assert not any("标签" in line for line in report.updated)
    changed = read_roster("名单.csv", TAGGED.replace(",银行\n", ",银行、保险\n").encode())
    with session(engine) as s:
        report = import_roster(s, changed.rows, columns=changed.columns)
        s.commit()
        assert s.exec(select(Unit.tags).where(Unit.name == "金融行业")).one() == "银行、保险"
    assert "金融行业（标签 银行→银行、保险）" in report.updated


async def test_a_push_to_tags_expects_only_those_units(bot, transport, engine, clock, tagged):
    answer = await command(bot, transport, "推送 刷单 给 学校,医院")
    assert "已推送 #1" in answer and "共 2 个单位" in answer and "对象：学校、医院（2 个单位）" in answer
    group = [o.text for o in transport.sent if o.chat_id == LIAISON_ROOM]
    assert len(group) == 1 and "本条请以下单位转发：学校、医院（区教育局、区卫健局）" in group[0]
    with session(engine) as s:
        push = s.get_one(Push, 1)
        assert push.target == "学校、医院"
        aimed = {s.get_one(Unit, t.unit_id).name for t in s.exec(select(PushTarget))}
    assert aimed == {"区教育局", "区卫健局"}
    # A liaison of a unit it is not aimed at says 已转发: nothing recorded for that unit.
    await transport.say(WANG, "已转发", room_id=LIAISON_ROOM)
    await transport.say(SUN, "已转发 #1", room_id=LIAISON_ROOM)
    assert confirmed(engine) == ["区教育局"]
    progress = await command(bot, transport, "进度")
    assert "（对象：学校、医院）" in progress and "已确认 1/2" in progress
    assert progress.splitlines()[-1] == "未确认（1）：区卫健局"
    # 提醒 mentions the one missing targeted unit's liaison only.
    await command(bot, transport, "提醒 #1")
    reminders = [o for o in transport.sent if o.chat_id == LIAISON_ROOM]
    assert len(reminders) == 1 and set(reminders[0].mention_ids) == {WU.contact_id}
    # At the deadline only the targeted unit that did not relay is a miss.
    clock.now = datetime(2026, 11, 26, 18, 5, tzinfo=TZ)
    await bot.run_schedule()
    await bot.send_pending()
    with session(engine) as s:
        misses = sorted(s.get_one(Unit, m.unit_id).name for m in s.exec(select(Miss)))
        # The records (单位 card, console) and the counting rule agree.
        records = unit_records(s, now=clock.now)
        assert records[unit_id(s, "城关镇")].received == 0 and records[unit_id(s, "城关镇")].missed == 0
        assert records[unit_id(s, "区卫健局")].missed == 1 and records[unit_id(s, "区教育局")].on_time == 1
        assert expected_counts(s, [1]) == {1: (2, 1)}
        assert [s.get_one(Unit, u).name for u in expected_unit_ids(s, [1])[1]] == ["区教育局", "区卫健局"]
    assert misses == ["区卫健局"]


async def test_kinds_and_unit_names_are_targets_and_unknown_words_push_nothing(bot, transport, engine, tagged):
    answer = await command(bot, transport, "推送 刷单 给 火星,学校")
    assert "没有找到推送对象：火星" in answer and "学校" in answer and "银行" in answer
    with session(engine) as s:
        assert s.exec(select(Push)).all() == []
    answer = await command(bot, transport, "推送 刷单 给 镇街")
    assert "共 3 个单位" in answer
    answer = await command(bot, transport, "推送 公检法 给 城关镇、教育局")  # a part of one unit's name
    assert "共 2 个单位" in answer
    with session(engine) as s:
        second = {s.get_one(Unit, t.unit_id).name for t in s.exec(select(PushTarget).where(PushTarget.push_id == 2))}
    assert second == {"城关镇", "区教育局"}


async def test_the_same_alert_to_other_units_is_no_repeat_and_to_the_same_units_is(bot, transport, engine, tagged):
    assert "已推送 #1" in await command(bot, transport, "推送 刷单 给 学校")
    assert "已推送 #2" in await command(bot, transport, "推送 刷单 给 银行")
    again = await command(bot, transport, "推送 刷单 给 银行")
    assert "#2" in again and "已推送 #3" not in again and "推送 刷单 给 银行 确认" in again
    # Every push of the day counts, not only the newest; and the same units however written.
    assert "#1" in await command(bot, transport, "推送 刷单 给 学校")
    assert "已推送 #3" in await command(bot, transport, "推送 刷单 给 镇街")
    again = await command(bot, transport, "推送 刷单 给 城关镇,东城街道,西湖镇")
    assert "#3" in again and "这次没有推送" in again
    assert "已推送 #4" in await command(bot, transport, "推送 刷单 给 城关镇,东城街道,西湖镇 确认")
    # 给 全部: every unit, the library's default target notwithstanding.
    everyone = await command(bot, transport, "推送 刷单 给 全部")
    assert "已推送 #5" in everyone and "共 6 个单位" in everyone
    with session(engine) as s:
        assert s.get_one(Push, 5).target == ""
        assert s.exec(select(PushTarget).where(PushTarget.push_id == 5)).all() == []


async def test_a_library_default_target_applies_unless_the_office_names_one(
    settings, transport, engine, clock, roster, tagged
):
    from bot.runtime.app import build_bot

    settings.default_targets = ["虚假征信=银行"]
    bot = build_bot(settings, transport, engine=engine, clock=clock, send_loop=False)
    await bot.start()
    await bot.send_pending()
    transport.sent.clear()
    try:
        answer = await command(bot, transport, "推送 征信")
        assert "共 1 个单位" in answer and "对象：银行" in answer
        answer = await command(bot, transport, "推送 征信 给 全部 确认")
        assert "共 6 个单位" in answer
        answer = await command(bot, transport, "推送 刷单")  # no default for this one
        assert "共 6 个单位" in answer
    finally:
        await bot.stop()


async def test_corrections_of_a_unit_the_push_is_not_aimed_at_change_nothing(bot, transport, engine, tagged):
    await command(bot, transport, "推送 刷单 给 银行")
    for text in ("补登 城关镇 #1 电话确认", "免转 城关镇 #1 停业", "撤销 城关镇 #1 误记"):
        answer = await command(bot, transport, text)
        assert answer == "#1 只推送给 银行，城关镇 不在其中，无需更正。", text
    with session(engine) as s:
        assert s.exec(select(Confirmation)).all() == [] and s.exec(select(Exemption)).all() == []
    assert "已补登" in await command(bot, transport, "补登 金融行业 #1 电话确认")
    assert confirmed(engine) == ["金融行业"]


async def test_a_scheduled_targeted_push_keeps_its_target(bot, transport, engine, clock, tagged):
    answer = await command(bot, transport, "推送 刷单 给 学校 今天10:00")
    assert "定时1" in answer
    with session(engine) as s:
        assert s.get_one(ScheduledPush, 1).target == "学校"
    assert "（对象：学校）" in await command(bot, transport, "定时")
    assert "没有找到推送对象" in await command(bot, transport, "推送 刷单 给 没这个 今天11:00")
    with session(engine) as s:
        assert len(s.exec(select(ScheduledPush)).all()) == 1
    transport.sent.clear()
    clock.now = datetime(2026, 11, 26, 10, 0, 30, tzinfo=TZ)
    await bot.run_schedule()
    await bot.send_pending()
    with session(engine) as s:
        push = s.exec(select(Push)).one()
        assert push.target == "学校"
        aimed = sorted(s.get_one(Unit, t.unit_id).name for t in s.exec(select(PushTarget)))
    assert aimed == ["区卫健局", "区教育局"]
    assert any(
        "本条请以下单位转发：学校（区教育局、区卫健局）" in o.text for o in transport.sent if o.chat_id == LIAISON_ROOM
    )


async def test_untargeted_units_do_not_owe_the_push_in_verify_or_records(bot, transport, engine, clock, tagged):
    await command(bot, transport, "推送 刷单 给 银行")
    await transport.say(ZHENG, "已转发", room_id=LIAISON_ROOM)
    await transport.say(LI, "已转发", room_id=LIAISON_ROOM)  # 东城街道: not asked, nothing owed
    assert confirmed(engine) == ["金融行业"]
    with session(engine) as s:
        ids = [unit_id(s, "金融行业"), unit_id(s, "东城街道")]
        assert not_expected(s, [1], ids) == {ids[0]: set(), ids[1]: {1}}
    answer = await command(bot, transport, "核查 东城街道 今天")
    assert "收到 1 条" not in answer
    answer = await command(bot, transport, "核查 金融行业 今天")
    assert "收到 1 条：按时转发 1" in answer
    with session(engine) as s:
        audit = s.exec(select(AuditLog.detail).where(AuditLog.action == "push").order_by(col(AuditLog.id))).all()
    assert audit and "给 银行" in audit[0]


async def test_the_unit_card_and_roster_show_the_tags(bot, transport, engine, tagged):
    from bot.domain.roster import roster_lines

    card = await command(bot, transport, "单位 区卫健局")
    assert card.splitlines()[0] == "区卫健局（区直单位 · 医院、学校）"
    with session(engine) as s:
        assert {line.unit: line.tags for line in roster_lines(s)}["金融行业"] == "银行"


async def test_relaybot_push_to_aims_the_push_and_refuses_unknown_words(bot, transport, engine, tagged, tmp_path):
    from tests.bot_process import relaybot

    empty = relaybot("push", "刷单", "--to=", db_url=str(engine.url), cwd=tmp_path)
    assert empty.returncode == 2 and "--to 后面请写推送对象" in empty.stderr
    bad = relaybot("push", "刷单", "--to", "火星", db_url=str(engine.url), cwd=tmp_path)
    assert bad.returncode == 2 and "没有找到推送对象：火星" in bad.stderr
    scheduled = relaybot("push", "刷单", "--to", "火星", "--at", "明天9:00", db_url=str(engine.url), cwd=tmp_path)
    assert scheduled.returncode == 2
    with session(engine) as s:
        assert s.exec(select(Push)).all() == [] and s.exec(select(ScheduledPush)).all() == []
    done = relaybot("push", "刷单", "--to", "学校、银行", db_url=str(engine.url), cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    assert "共 3 个单位" in done.stdout and "对象：学校、银行（3 个单位）" in done.stdout
    with session(engine) as s:
        push = s.exec(select(Push)).one()
        assert push.target == "学校、银行" and expected_counts(s, [push.id]) == {push.id: (3, 0)}
    await bot.send_pending()  # the running bot sends it
    assert [o.chat_id for o in transport.sent] == [LIAISON_ROOM]
    assert "本条请以下单位转发：学校、银行（区教育局、区卫健局、金融行业）" in transport.sent[0].text


async def test_the_report_counts_only_the_units_a_push_was_aimed_at(bot, transport, engine, clock, tagged):
    from datetime import date

    from bot.domain.escalation import Ladder
    from bot.reports.build import build_report

    await command(bot, transport, "推送 刷单 给 学校")
    await transport.say(SUN, "已转发", room_id=LIAISON_ROOM)
    clock.now = datetime(2026, 11, 26, 18, 5, tzinfo=TZ)
    await bot.run_schedule()
    await bot.send_pending()
    day = date(2026, 11, 26)
    with session(engine) as s:
        report = build_report(s, kind="day", start=day, end=day, now=clock.now, tz=TZ, ladder=Ladder())
    rows = {u.unit: (u.received, u.on_time, u.missed, u.exempted, u.rank) for u in report.units}
    assert rows == {"区教育局": (1, 1, 0, 0, 1), "区卫健局": (1, 0, 1, 0, 2)}  # nobody else, and no 免转
    [push] = report.pushes
    assert (push.confirmed, push.total, push.missing_units, push.exempted_units) == (1, 2, ["区卫健局"], [])


async def test_a_bare_word_after_a_push_for_others_is_not_a_late_word_on_an_older_push(
    bot, transport, engine, clock, tagged
):
    from bot.transport.base import Image

    await command(bot, transport, "推送 刷单")  # #1 for everyone; 城关镇 and 东城街道 never relay it
    clock.now = datetime(2026, 11, 27, 9, 0, tzinfo=TZ)  # the next day: #1 closed, still taking late words
    await bot.run_schedule()
    await bot.send_pending()
    await command(bot, transport, "推送 公检法 给 学校")  # #2
    transport.sent.clear()
    await transport.say(WANG, "已转发", room_id=LIAISON_ROOM)
    await transport.say(WANG, "已转发", room_id=LIAISON_ROOM)  # told once
    await transport.send_image(LI, Image("shot.jpg", b"\xff\xd8fake"), room_id=LIAISON_ROOM)
    assert confirmed(engine, 1) == [] and confirmed(engine, 2) == []
    clock.advance(minutes=2)
    await bot.flush_acks()
    await bot.send_pending()
    group = [o.text for o in transport.sent if o.chat_id == LIAISON_ROOM]
    assert len(group) == 1, group
    assert group[0].count("#2 只请学校转发，城关镇无需转发，也不用回复。") == 1
    assert "#2 只请学校转发，东城街道无需转发，也不用回复。" in group[0]
    # Named, it is recorded as asked: 已转发 #1 is a late word on #1.
    await transport.say(WANG, "已转发 #1", room_id=LIAISON_ROOM)
    assert confirmed(engine, 1) == ["城关镇"]


async def test_a_target_typed_without_spaces_is_read_and_an_empty_one_is_asked_for(bot, transport, engine, tagged):
    for text in ("推送 刷单 给", "推送刷单给", "推送 刷单 给："):
        answer = await command(bot, transport, text)
        assert answer.startswith("“给”后面请写推送对象，如：推送 刷单 给 学校,医院"), (text, answer)
    with session(engine) as s:
        assert s.exec(select(Push)).all() == []
    assert "对象：学校（2 个单位）" in await command(bot, transport, "推送刷单给学校")
    assert "对象：医院（1 个单位）" in await command(bot, transport, "推送 公检法给医院")
    # A link's title may hold a 给 of its own: not a target.
    with session(engine) as s:
        assert [p.target for p in s.exec(select(Push).order_by(col(Push.id)))] == ["学校", "医院"]


def test_a_target_of_many_units_gives_their_number_not_their_names():
    from bot.chat import compose
    from bot.content import load_texts
    from bot.storage.models import Alert

    names = [f"第{i}小学" for i in range(11)]
    deadline = datetime(2026, 11, 26, 18, 0, tzinfo=TZ)
    text = compose.push_text(
        load_texts(), n=3, alert=Alert(title="t"), deadline=deadline, tz=TZ, target="学校", units=names
    )
    assert "本条请以下单位转发：学校（11 个单位）" in text
    text = compose.push_text(
        load_texts(), n=3, alert=Alert(title="t"), deadline=deadline, tz=TZ, target="学校", units=names[:10]
    )
    assert "本条请以下单位转发：学校（" + "、".join(names[:10]) + "）" in text


def test_default_targets_are_checked_when_the_settings_load():
    from pydantic import ValidationError

    from bot.config import Settings

    assert Settings(default_targets="征信＝银行, 刷单=学校、医院").default_targets == ["征信=银行", "刷单=学校、医院"]
    for bad in (["虚假征信银行"], ["=银行"], ["虚假征信="]):
        with pytest.raises(ValidationError):
            Settings(default_targets=bad)


async def test_a_default_target_by_short_name_and_one_the_roster_lacks(settings, transport, engine, clock, tagged):
    from bot.runtime.app import build_bot

    settings.default_targets = ["征信=银行", "公检法=不存在"]
    bot = build_bot(settings, transport, engine=engine, clock=clock, send_loop=False)
    await bot.start()
    await bot.send_pending()
    transport.sent.clear()
    try:
        assert "对象：银行" in await command(bot, transport, "推送 虚假征信")
        answer = await command(bot, transport, "推送 公检法")
        assert answer.startswith("配置 default_targets 里 冒充公检法 的默认对象“不存在”在名单里找不到：不存在。")
        assert "共 6 个单位" in await command(bot, transport, "推送 公检法 给 全部")
    finally:
        await bot.stop()


async def test_a_part_of_several_units_names_lists_them(bot, transport, engine, tagged):
    answer = await command(bot, transport, "推送 刷单 给 局")
    assert answer == "“局”对应多个单位：区教育局、区卫健局，请写全名。"
    answer = await command(bot, transport, "推送 刷单 给 局,火星")
    assert answer.splitlines() == [
        "没有找到推送对象：火星。可写标签（学校、医院、银行）、类别（镇街、区直单位、行业）或单位名，多个用逗号隔开，如：推送 刷单 给 学校,医院",
        "“局”对应多个单位：区教育局、区卫健局，请写全名。",
    ]
    with session(engine) as s:
        assert s.exec(select(Push)).all() == []


def test_two_rows_of_one_unit_with_different_tags_are_joined_with_a_warning():
    table = TAGGED.replace(
        "城关镇,镇街,王芳,wxid_wangfang,王芳-城关镇,13800000001,主,",
        "城关镇,镇街,王芳,wxid_wangfang,王芳-城关镇,13800000001,主,乡镇",
    )
    table = table.replace("城关镇,镇街,赵磊,,赵磊,13800000002,备,", "城关镇,镇街,赵磊,,赵磊,13800000002,备,学校")
    read = read_roster("名单.csv", table.encode())
    assert {r.unit: r.tags for r in read.rows}["城关镇"] == "乡镇、学校"
    assert "城关镇 的标签前后不一：乡镇（第 2 行）、学校（第 3 行），合并为“乡镇、学校”导入。" in read.warnings
