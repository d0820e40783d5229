"""End to end through the real gateway: the message forms real WeChat puppets deliver (群接龙 as title text and
as raw XML, quote replies as type-57 XML, recalls, pats, the silent rate-limit notice, Post and System types),
and the ask-once flow."""

from __future__ import annotations

import pytest
from sqlmodel import col, select

from bot.storage.db import make_engine, session
from bot.storage.models import BotState, Confirmation, Outbox, Unit
from bot.storage.outbox import BACKOFF_KEY
from tests.bot_process import ROOT, BotProcess, gateway_env, relaybot
from tests.gateway_harness import Gateway, has_text, wait_until

pytestmark = pytest.mark.e2e  # the bot as a process against the real Node gateway

ADMIN = ("wxid_admin_chen", "陈静")
WANG = ("wxid_wangfang", "王芳")  # 城关镇
LI = ("wxid_liqiang", "李强")  # 东城街道
SUN = ("wxid_sunli", "孙丽")  # 区教育局
WU = ("wxid_wg88", "吴刚")  # 区卫健局 (by WeChat name)
ZHENG = ("wxid_zhengjie", "郑洁")  # 金融行业
STRANGER = ("wxid_passerby", "路人甲")
PEOPLE = [ADMIN, WANG, LI, SUN, WU, ZHENG, STRANGER]
LIAISON_ROOM = "21001@chatroom"
OFFICE_ROOM = "21002@chatroom"
GROUP_NOTE, RECALLED, POST, SYSTEM, UNKNOWN = 10, 13, 16, 18, 0


@pytest.fixture(scope="module")
def gateway():
    gw = Gateway.start()
    for contact_id, name in PEOPLE:
        gw.contact(contact_id, name)
    gw.room(LIAISON_ROOM, "全区反诈联络员群", [c for c, _ in PEOPLE])
    gw.room(OFFICE_ROOM, "反诈办工作群", [ADMIN[0]])
    yield gw
    gw.stop()


@pytest.fixture
def bot(gateway, tmp_path, db_url):
    imported = relaybot(
        "roster", "import", str(ROOT / "content" / "examples" / "roster_example.csv"), db_url=db_url, cwd=tmp_path
    )
    assert imported.returncode == 0, imported.stderr
    proc = BotProcess(
        gateway_env(
            gateway, db_url, tmp_path, admin=ADMIN[0], liaison_groups="全区反诈联络员群", office_group=OFFICE_ROOM
        ),
        tmp_path,
    )
    proc.db_url = db_url
    proc.start()
    yield proc
    proc.stop()
    proc.close()


def confirmed(db_url):
    engine = make_engine(db_url)
    with session(engine) as s:
        rows = sorted((s.get(Unit, c.unit_id).name, c.push_id, c.method) for c in s.exec(select(Confirmation)))
    engine.dispose()
    return rows


def push(gateway, what="刷单"):
    mark = len(gateway.sent())
    gateway.say(ADMIN[0], f"推送 {what}", room=OFFICE_ROOM)
    gateway.wait_sent(lambda items: has_text(LIAISON_ROOM, "【反诈预警")(items), since=mark, timeout=15)


def solitaire_xml(title: str, items: list[tuple[str, int, int]]) -> str:
    info = "".join(f"<i><u>{u}</u><t>1764460800</t><r>{start}-{length}</r></i>" for u, start, length in items)
    return (
        f'<msg><appmsg appid="" sdkver="0"><title>{title}</title><type>53</type>'
        f"<extinfo><solitaire_info>{info}</solitaire_info></extinfo></appmsg></msg>"
    )


def test_group_note_in_both_forms_credits_only_the_senders_own_entry(gateway, bot):
    push(gateway)
    mark = len(gateway.sent())
    # padlocal: the title only. 王芳 adds line 2; line 1 (another unit) was there before and is not hers.
    first = "#接龙\n11月30日反诈预警转发情况\n\n1. 东城街道 李强 已转发"
    gateway.raw(LI[0], GROUP_NOTE, first, room=LIAISON_ROOM)
    gateway.raw(WANG[0], GROUP_NOTE, first + "\n2. 城关镇 王芳 已转发", room=LIAISON_ROOM)
    # puppet-xp: raw XML whose solitaire_info says who wrote each line; 孙丽 sends a list with someone else's
    # line 3 (金融行业, written by 郑洁) and her own line 4.
    title = first + "\n2. 城关镇 王芳 已转发\n3. 金融行业 郑洁 已转发\n4. 区教育局 孙丽 已转发"
    start3 = len((first + "\n2. 城关镇 王芳 已转发\n").encode("utf-16-le")) // 2
    start4 = len((first + "\n2. 城关镇 王芳 已转发\n3. 金融行业 郑洁 已转发\n").encode("utf-16-le")) // 2
    gateway.raw(
        SUN[0], GROUP_NOTE, solitaire_xml(title, [(ZHENG[0], start3, 14), (SUN[0], start4, 14)]), room=LIAISON_ROOM
    )
    gateway.wait_sent(has_text(LIAISON_ROOM, "✅ 已记录 #1"), since=mark, timeout=15)
    assert confirmed(bot.db_url) == [("东城街道", 1, "note"), ("区教育局", 1, "note"), ("城关镇", 1, "note")]


def test_xml_quote_recall_pat_post_and_system_messages(gateway, bot):
    push(gateway)
    mark = len(gateway.sent())
    quote = (
        '<msg><appmsg appid="" sdkver="0"><title>[强]</title><type>57</type><refermsg><type>1</type>'
        "<svrid>123</svrid><chatusr>bot-self</chatusr><displayname>反诈助手</displayname>"
        "<content>【反诈预警 #1】警惕刷单返利</content></refermsg></appmsg></msg>"
    )
    gateway.raw(LI[0], UNKNOWN, quote, room=LIAISON_ROOM)
    said = gateway.say(WANG[0], "城关镇已转发", room=LIAISON_ROOM)
    gateway.wait_sent(has_text(LIAISON_ROOM, "✅ 已记录 #1"), since=mark, timeout=15)
    assert confirmed(bot.db_url) == [("东城街道", 1, "quote"), ("城关镇", 1, "text")]

    # A pat (拍一拍) arrives as RECALLED too and changes nothing; 王芳 then recalls her confirmation.
    mark = len(gateway.sent())
    gateway.raw(
        WANG[0],
        RECALLED,
        '<sysmsg type="pat"><pat><fromusername>wxid_wangfang</fromusername>'
        "<pattedusername>bot-self</pattedusername></pat></sysmsg>",
        room=LIAISON_ROOM,
    )
    gateway.raw(
        LI[0],
        RECALLED,
        f'<sysmsg type="revokemsg"><revokemsg><session>{LIAISON_ROOM}</session>'
        f'<newmsgid>{said}</newmsgid><replacemsg>"李强" 撤回了一条消息</replacemsg></revokemsg></sysmsg>',
        room=LIAISON_ROOM,
    )  # not hers to recall: ignored
    gateway.raw(
        WANG[0],
        RECALLED,
        f'<sysmsg type="revokemsg"><revokemsg><session>{LIAISON_ROOM}</session>'
        f'<newmsgid>{said}</newmsgid><replacemsg>"王芳" 撤回了一条消息</replacemsg></revokemsg></sysmsg>',
        room=LIAISON_ROOM,
    )
    gateway.wait_sent(has_text(LIAISON_ROOM, "城关镇撤回了 #1 的确认"), since=mark, timeout=15)
    assert confirmed(bot.db_url) == [("东城街道", 1, "quote")]

    # A Post (a 视频号 share) from a stranger in a private chat reaches the bot: the usual one-time intro.
    mark = len(gateway.sent())
    gateway.raw(STRANGER[0], POST, "<msg><appmsg><title>视频号分享</title><type>51</type></appmsg></msg>")
    gateway.wait_sent(has_text(STRANGER[0], "联络员请将推送转发"), since=mark, timeout=15)

    # WeChat's silent rate limit, as a System message: sending pauses, and the office's notice is queued (it
    # goes out when the pause ends, as after a refused send).
    gateway.raw(ADMIN[0], SYSTEM, "发送消息过于频繁，可稍后再试。", room=OFFICE_ROOM)
    engine = make_engine(bot.db_url)

    def paused():
        with session(engine) as s:
            notice = s.exec(
                select(Outbox).where(Outbox.chat_id == OFFICE_ROOM, col(Outbox.text).contains("微信提示发送过于频繁"))
            ).first()
            return s.get(BotState, BACKOFF_KEY) is not None and notice is not None

    wait_until(paused, bool, 15, "the pause and the office notice")
    engine.dispose()


def test_an_unsure_reply_is_asked_about_once_and_a_yes_counts(gateway, bot):
    push(gateway)
    mark = len(gateway.sent())
    gateway.say(WANG[0], "转发了一部分", room=LIAISON_ROOM)
    gateway.say(WANG[0], "应该转了吧", room=LIAISON_ROOM)  # unsure again: not asked twice
    sent = gateway.wait_sent(has_text(LIAISON_ROOM, "是否已转发 #1"), since=mark, timeout=15)
    asks = [i for i in sent if i["conversation_id"] == LIAISON_ROOM and "是否已转发" in i["text"]]
    assert len(asks) == 1 and asks[0]["mention_ids"] == [WANG[0]]
    assert asks[0]["text"].startswith("@王芳") and "城关镇：是否已转发 #1？回复“是”即确认" in asks[0]["text"]
    assert confirmed(bot.db_url) == []
    mark = len(gateway.sent())
    gateway.say(LI[0], "是", room=LIAISON_ROOM)  # not asked: nothing
    gateway.say(WANG[0], "是的", room=LIAISON_ROOM)
    gateway.wait_sent(has_text(LIAISON_ROOM, "✅ 已记录 #1：城关镇"), since=mark, timeout=15)
    assert confirmed(bot.db_url) == [("城关镇", 1, "answer")]
