"""核查 <单位> <日期> in the office group (issue 15 item 5): the summary, then the .xlsx with every push."""

from __future__ import annotations

import io

import openpyxl
from sqlmodel import select

from bot.storage.db import session
from bot.storage.models import AuditLog
from handlers.office_verify import split_unit_and_day
from tests.conftest import ADMIN, LIAISON_ROOM, OFFICE_ROOM, WANG
from tests.reports.test_verify import history  # noqa: F401 - the constructed history, a fixture


async def ask(bot, transport, text: str, *, sender=ADMIN, room: str = OFFICE_ROOM):
    """What the bot sent to `room` after `sender` said `text` there."""
    transport.sent.clear()
    await transport.say(sender, text, room_id=room)
    await bot.send_pending()
    return [o for o in transport.sent if o.chat_id == room]


def verify_audits(engine) -> list[tuple[str, str]]:
    with session(engine) as s:
        return [(a.actor_id, a.detail) for a in s.exec(select(AuditLog).where(AuditLog.action == "verify"))]


async def test_an_admin_gets_the_summary_and_the_xlsx(bot, transport, engine, history):  # noqa: F811
    sent = await ask(bot, transport, "核查 城关镇 2026-11-20")
    assert len(sent) == 2
    text, xlsx = sent
    assert text.text.splitlines() == [
        "🔎 回访核查：城关镇",
        "2026年8月20日 0:00 至 2026年11月20日 24:00 创建的推送（撤回的不计）",
        "收到 6 条：按时转发 1，迟报 1，未转发 2，补登 1，免转 1。",
        "未转发（2）：",
        f"#{history['missed']}「冒充公检法预警」2026-10-08 09:00 推送",
        f"#{history['on_d']}「网络游戏诈骗预警」2026-11-20 23:59 推送",
        "逐条记录（推送时间、确认时间、确认人、方式、截图核验）见下方表格，可作为该单位书面说明的依据。",
    ]
    assert xlsx.file is not None and xlsx.file.name == "回访核查_城关镇_2026-11-20.xlsx"
    ws = openpyxl.load_workbook(io.BytesIO(xlsx.file.data))["核查记录"]
    assert ws["A1"].value == "回访核查：城关镇（镇街）"
    assert [r[0].value for r in ws.iter_rows(min_row=5)] == [
        history[k] for k in ("on_time", "late", "missed", "added", "exempt", "on_d")
    ]
    assert verify_audits(engine) == [(ADMIN.contact_id, "城关镇 2026-11-20: 6 pushes")]


async def test_a_loosely_typed_unit_and_a_year_less_day(bot, transport, engine, history):  # noqa: F811
    for typed in ("核查 城关 11.20", "核查 城关镇11月20日", "核查  城关镇   2026/11/20"):
        sent = await ask(bot, transport, typed)
        assert sent[0].text.startswith("🔎 回访核查：城关镇\n2026年8月20日 0:00 至 2026年11月20日 24:00"), typed
        assert sent[1].file is not None


def test_the_unit_and_the_day_are_told_apart():
    assert split_unit_and_day("城关镇 11月20日") == ("城关镇", "11月20日")
    assert split_unit_and_day("城关镇11月20日") == ("城关镇", "11月20日")
    assert split_unit_and_day("区 卫健局 2026-11-20") == ("区 卫健局", "2026-11-20")
    assert split_unit_and_day("城关镇2026-11-20") == ("城关镇", "2026-11-20")
    assert split_unit_and_day("城关镇") == ("", "")
    assert split_unit_and_day("11月20日") == ("", "")


async def test_bad_input_gets_a_clear_answer_and_nothing_else(bot, transport, engine, history):  # noqa: F811
    cases = {
        "核查 海湖镇 2026-11-20": "没有找到单位“海湖镇”。",
        "核查 镇 2026-11-20": "“镇”对应多个单位：城关镇、西湖镇，请写全名。",
        "核查 城关镇 11月32日": "没看懂日期“11月32日”。可以这样写：2026-11-20、2026/11/20、11月20日、11.20。",
        "核查 城关镇 2026-12-01": (
            "“2026-12-01”是2026年12月1日，还没到。核查的是受害人反映之日及之前三个月的推送，请写已经过去的日期。"
        ),
        "核查 城关镇": "用法：核查 单位 日期，例如：核查 海湖镇 2026-11-20（也可写 11月20日、11.20、2026/11/20；"
        "不写年份指最近的这一天）",
    }
    for typed, answer in cases.items():
        sent = await ask(bot, transport, typed)
        assert [(o.text, o.file) for o in sent] == [(answer, None)], typed
    assert verify_audits(engine) == []


async def test_a_window_without_pushes_gets_the_text_alone(bot, transport, history):  # noqa: F811
    sent = await ask(bot, transport, "核查 城关镇 2026-05-01")
    assert [(o.text, o.file) for o in sent] == [
        (
            "🔎 回访核查：城关镇\n2026年2月1日 0:00 至 2026年5月1日 24:00 创建的推送（撤回的不计）\n"
            "这段时间没有推送，没有需要转发的预警。",
            None,
        )
    ]


async def test_only_admins_and_not_in_the_liaison_group(bot, transport, engine, history):  # noqa: F811
    sent = await ask(bot, transport, "核查 城关镇 2026-11-20", sender=WANG, room=LIAISON_ROOM)
    assert all(o.file is None for o in sent) and not any("回访核查" in o.text for o in sent)
    sent = await ask(bot, transport, "核查 城关镇 2026-11-20", room=LIAISON_ROOM)
    assert all(o.file is None for o in sent) and not any("回访核查" in o.text for o in sent)
    assert verify_audits(engine) == []


async def test_help_lists_the_command(bot, transport):
    sent = await ask(bot, transport, "帮助")
    assert "核查 单位 日期 —— 回访核查" in sent[0].text
