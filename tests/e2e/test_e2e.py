"""End to end: the bot as a process against a real Wechaty puppet-service gateway on 127.0.0.1."""

from __future__ import annotations

from collections import Counter
from datetime import UTC

import pytest
from sqlmodel import select

from bot.storage.db import make_engine, session
from bot.storage.models import Confirmation, Unit
from tests.bot_process import ROOT, BotProcess, gateway_env, relaybot
from tests.gateway_harness import Gateway, has_text, texts_to

pytestmark = pytest.mark.e2e  # the bot as a process against the real Node gateway

ADMIN = ("wxid_admin_chen", "陈静")
WANG = ("wxid_wangfang", "王芳")
ZHAO = ("wxid_zhaolei", "赵磊")
LI = ("wxid_liqiang", "李强")
ZHOU = ("wxid_zm2024", "小敏")  # recognised by group nickname
SUN = ("wxid_sunli", "孙丽")
WU = ("wxid_wg88", "吴刚")  # recognised by WeChat name
ZHENG = ("wxid_zhengjie", "郑洁")
STRANGER = ("wxid_passerby", "路人甲")
PEOPLE = [ADMIN, WANG, ZHAO, LI, ZHOU, SUN, WU, ZHENG, STRANGER]
LIAISON_ROOM = "20001@chatroom"
OFFICE_ROOM = "20002@chatroom"


@pytest.fixture(scope="module")
def gateway():
    gw = Gateway.start()
    for contact_id, name in PEOPLE:
        gw.contact(contact_id, name)
    gw.room(LIAISON_ROOM, "全区反诈联络员群", [c for c, _ in PEOPLE], nicknames={ZHOU[0]: "周敏（西湖镇）"})
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
    yield proc
    proc.stop()
    proc.close()


def confirmations(db_url):
    engine = make_engine(db_url)
    with session(engine) as s:
        rows = sorted((s.get(Unit, c.unit_id).name, c.method) for c in s.exec(select(Confirmation)))
    engine.dispose()
    return rows


def test_push_confirm_progress_remind_and_restart(gateway, bot):
    bot.start()
    mark = len(gateway.sent())

    gateway.say(ADMIN[0], "推送 刷单", room=OFFICE_ROOM)
    # The office's answer goes first; the liaison groups' copies follow at the sending pace.
    sent = gateway.wait_sent(
        lambda items: has_text(OFFICE_ROOM, "已推送 #1")(items) and texts_to(items, LIAISON_ROOM),
        since=mark,
        timeout=10,
    )
    assert [i["conversation_id"] for i in sent][0] == OFFICE_ROOM
    push = texts_to(sent, LIAISON_ROOM)
    assert len(push) == 1 and push[0].startswith("【反诈预警 #1】") and "已转发 #1" in push[0]

    # Three units confirm in three ways.
    mark = len(gateway.sent())
    gateway.say(WANG[0], "城关镇 已转发 #1 👍", room=LIAISON_ROOM)
    gateway.say(
        LI[0], "「反诈助手：【反诈预警 #1】警惕刷单返利」\n- - - - - - - - - - - - - - -\n已转", room=LIAISON_ROOM
    )
    gateway.image(SUN[0], "转发截图.jpg", b"\xff\xd8\xff\xe0" + bytes(range(256)) * 100, room=LIAISON_ROOM)
    # Someone off the roster, a question, and a non-admin's command.
    gateway.say(STRANGER[0], "已转发", room=LIAISON_ROOM)
    gateway.say(WU[0], "请问怎么转发？", room=LIAISON_ROOM)
    gateway.say(LI[0], "推送 刷单", room=LIAISON_ROOM)
    # The refusal and the roster notice are courtesy replies, sent after the acknowledgement (issue 12 item 2).
    sent = gateway.wait_sent(
        lambda items: all(
            has_text(LIAISON_ROOM, t)(items)
            for t in ("✅ 已记录 #1", "您还不在联络员名单里", "该指令仅限反诈办管理员使用。")
        ),
        since=mark,
        timeout=10,
    )
    group = texts_to(sent, LIAISON_ROOM)
    notices = [i for i in sent if i["conversation_id"] == LIAISON_ROOM and "您还不在联络员名单里" in i["text"]]
    assert len(notices) == 1 and notices[0]["mention_ids"] == [STRANGER[0]] and "@路人甲" in notices[0]["text"]
    assert "该指令仅限反诈办管理员使用。" in group
    acks = [t for t in group if t.startswith("✅")]
    assert acks == ["✅ 已记录 #1：城关镇、东城街道、区教育局（本次 3 个单位）。目前已确认 3/6。"]
    assert confirmations(bot.db_url) == [("东城街道", "quote"), ("区教育局", "image"), ("城关镇", "text")]

    mark = len(gateway.sent())
    gateway.say(ADMIN[0], "进度", room=OFFICE_ROOM)
    sent = gateway.wait_sent(has_text(OFFICE_ROOM, "未确认"), since=mark, timeout=10)
    progress = texts_to(sent, OFFICE_ROOM)[-1]
    assert "已确认 3/6" in progress
    assert progress.splitlines()[-1] == "未确认（3）：西湖镇、区卫健局、金融行业"

    mark = len(gateway.sent())
    gateway.say(ADMIN[0], "提醒 #1", room=OFFICE_ROOM)
    sent = gateway.wait_sent(
        lambda items: (
            has_text(OFFICE_ROOM, "已在 1 个联络员群提醒")(items) and has_text(LIAISON_ROOM, "转发提醒")(items)
        ),
        since=mark,
        timeout=10,
    )
    reminders = [i for i in sent if i["conversation_id"] == LIAISON_ROOM and i["kind"] == "text"]
    assert len(reminders) == 1
    assert set(reminders[0]["mention_ids"]) == {ZHOU[0], WU[0], ZHENG[0]}
    assert "\n西湖镇（#1）\n区卫健局（#1）\n金融行业（#1）\n" in reminders[0]["text"]

    # A restart keeps every confirmation.
    assert bot.stop() == 0
    bot.start()
    mark = len(gateway.sent())
    gateway.say(ADMIN[0], "进度 #1", room=OFFICE_ROOM)
    sent = gateway.wait_sent(has_text(OFFICE_ROOM, "未确认"), since=mark, timeout=10)
    assert "已确认 3/6" in texts_to(sent, OFFICE_ROOM)[-1]
    assert confirmations(bot.db_url) == [("东城街道", "quote"), ("区教育局", "image"), ("城关镇", "text")]


def test_kill_9_keeps_acknowledged_confirmations(gateway, bot):
    bot.start()
    mark = len(gateway.sent())
    gateway.say(ADMIN[0], "推送 公检法", room=OFFICE_ROOM)
    gateway.wait_sent(has_text(OFFICE_ROOM, "已推送"), since=mark, timeout=10)
    mark = len(gateway.sent())
    gateway.say(ZHENG[0], "已转发", room=LIAISON_ROOM)
    gateway.wait_sent(has_text(LIAISON_ROOM, "✅ 已记录"), since=mark, timeout=10)
    bot.kill()
    assert confirmations(bot.db_url) == [("金融行业", "text")]
    bot.start()
    mark = len(gateway.sent())
    gateway.say(ADMIN[0], "进度", room=OFFICE_ROOM)
    sent = gateway.wait_sent(has_text(OFFICE_ROOM, "未确认"), since=mark, timeout=10)
    assert "已确认 1/6" in texts_to(sent, OFFICE_ROOM)[-1]


def test_run_without_endpoint_or_token_says_what_to_set(tmp_path, db_url):
    result = relaybot("run", db_url=db_url, cwd=tmp_path)
    assert result.returncode == 2
    assert "WECHATY_PUPPET_SERVICE_ENDPOINT" in result.stderr and "WECHATY_PUPPET_SERVICE_TOKEN" in result.stderr
    assert "relaybot run --console" in result.stderr


def test_wrong_token_or_unreachable_gateway_is_explained(gateway, tmp_path, db_url):
    base = {"db_url": db_url, "cwd": tmp_path, "RELAYBOT_CACHE_DIR": str(tmp_path / "cache")}
    result = relaybot(
        "run", **base, WECHATY_PUPPET_SERVICE_ENDPOINT=gateway.endpoint, WECHATY_PUPPET_SERVICE_TOKEN="not-the-token"
    )
    assert result.returncode == 1
    assert f"无法连接微信网关 {gateway.endpoint}" in result.stderr and "token" in result.stderr
    result = relaybot("run", **base, WECHATY_PUPPET_SERVICE_ENDPOINT="127.0.0.1:9", WECHATY_PUPPET_SERVICE_TOKEN="x")
    assert result.returncode == 1 and "无法连接微信网关 127.0.0.1:9" in result.stderr


def test_invitations_from_admins_only_and_setting_the_group_in_chat(gateway, bot):
    from tests.gateway_harness import wait_until

    bot.start()
    stranger_invite = gateway.invite(STRANGER[0], "20003@chatroom", "陌生群", [STRANGER[0]])
    admin_invite = gateway.invite(ADMIN[0], "20004@chatroom", "东片联络员群", [ADMIN[0], WU[0]])
    # Events are handled in order: once the admin's invitation is accepted, the stranger's was already judged.
    invites = wait_until(gateway.invites, lambda items: any(i["accepted"] for i in items), 10, "an accepted invite")
    accepted = {i["id"] if "id" in i else i.get("invitation_id"): i["accepted"] for i in invites}
    assert accepted.get(admin_invite) is True and accepted.get(stranger_invite) is False
    mark = len(gateway.sent())
    gateway.say(ADMIN[0], "设为联络员群", room="20004@chatroom")
    gateway.wait_sent(has_text("20004@chatroom", "本群已设为联络员群「东片联络员群」"), since=mark, timeout=10)
    gateway.say(ADMIN[0], "推送 征信", room=OFFICE_ROOM)
    sent = gateway.wait_sent(
        lambda items: (
            has_text(OFFICE_ROOM, "到 2 个联络员群")(items) and has_text("20004@chatroom", "【反诈预警 #1】")(items)
        ),
        since=mark,
        timeout=10,
    )
    assert any(t.startswith("【反诈预警 #1】") for t in texts_to(sent, "20004@chatroom"))


def test_kill_9_during_a_due_reminder_then_exactly_one_reminder_in_each_group(gateway, bot, tmp_path):
    import time as _time
    from datetime import datetime
    from zoneinfo import ZoneInfo

    from bot.storage.models import Outbox
    from tests.gateway_harness import wait_until

    rooms = {"20011@chatroom": [WANG, ZHAO, LI], "20012@chatroom": [ZHOU, SUN], "20013@chatroom": [WU, ZHENG]}
    names = {"20011@chatroom": "联络员一群", "20012@chatroom": "联络员二群", "20013@chatroom": "联络员三群"}
    for room_id, people in rooms.items():
        gateway.room(
            room_id,
            names[room_id],
            [ADMIN[0], *(c for c, _ in people)],
            nicknames={ZHOU[0]: "周敏（西湖镇）"} if ZHOU in people else None,
        )

    def offset_to(local_time: datetime) -> str:
        return str((local_time - datetime.now(UTC)).total_seconds())

    thursday = datetime(2026, 11, 26, tzinfo=ZoneInfo("Asia/Shanghai"))
    # The push is made at 09:00 by the bot's clock, far from the 10:00 reminder however slowly the bot starts.
    bot.env.update(
        {
            "RELAYBOT_LIAISON_GROUPS": ",".join(names.values()),
            "RELAYBOT_SEND_SPACING_SECONDS": "1.0",
            "RELAYBOT_SCHEDULE_CHECK_SECONDS": "0.3",
            "RELAYBOT_CLOCK_OFFSET_SECONDS": offset_to(thursday.replace(hour=9)),
            "RELAYBOT_OUTAGE_NOTICE_MINUTES": "0",  # the clock jumps an hour between runs: no 离线 line in the queue
        }
    )
    bot.start()
    mark = len(gateway.sent())
    gateway.say(ADMIN[0], "推送 刷单", room=OFFICE_ROOM)
    gateway.wait_sent(has_text(OFFICE_ROOM, "到 3 个联络员群"), since=mark, timeout=30)
    gateway.wait_sent(lambda items: all(texts_to(items, r) for r in rooms), since=mark, timeout=30)  # the push itself
    bot.stop()

    def is_reminder(item):
        return item["kind"] == "text" and item["text"].lstrip("@").find("⏰ 转发提醒") >= 0

    # Back at 10:00 sharp: the reminder is due at once. Ten seconds between sends leave the other two groups waiting
    # while the first group's reminder is recorded as sent, even on a loaded machine.
    bot.env["RELAYBOT_CLOCK_OFFSET_SECONDS"] = offset_to(thursday.replace(hour=10))
    bot.env["RELAYBOT_SEND_SPACING_SECONDS"] = "10"
    mark = len(gateway.sent())
    bot.start()
    engine = make_engine(bot.db_url)

    def reminder_rows():
        with session(engine) as s:
            return s.exec(select(Outbox).where(Outbox.text.startswith("⏰ 转发提醒"))).all()

    def reminders_marked_sent():
        return [r.state for r in reminder_rows()]

    # Kill as soon as the first group's reminder is on record as sent, while the others wait their turn.
    wait_until(reminders_marked_sent, lambda states: "sent" in states, 60, "the first reminder recorded as sent")
    bot.kill()
    states = reminders_marked_sent()
    assert sorted(states) == ["pending", "pending", "sent"], states
    before = [i["conversation_id"] for i in gateway.sent(mark) if is_reminder(i)]
    assert len(before) == 1

    # Back half a minute later by the bot's clock: within the grace period, so the reminder goes on.
    bot.env["RELAYBOT_CLOCK_OFFSET_SECONDS"] = offset_to(thursday.replace(hour=10, minute=0, second=30))
    bot.env["RELAYBOT_SEND_SPACING_SECONDS"] = "1.0"
    bot.start()
    gateway.wait_sent(
        lambda items: {i["conversation_id"] for i in items if is_reminder(i)} == set(rooms), since=mark, timeout=60
    )
    # Every schedule check since the restart has seen the reminder as done: none may queue it again.
    _time.sleep(2.0)
    assert len(reminder_rows()) == 3
    got = [i["conversation_id"] for i in gateway.sent(mark) if is_reminder(i)]
    assert sorted(got) == sorted(rooms), got
    for room_id, people in rooms.items():
        reminder = next(i for i in gateway.sent(mark) if is_reminder(i) and i["conversation_id"] == room_id)
        assert set(reminder["mention_ids"]) == {c for c, _ in people}
    engine.dispose()


def test_kill_9_during_a_30_group_push_from_the_cli_then_every_group_has_it_exactly_once(gateway, bot, tmp_path):
    import time as _time

    from bot.storage.models import Outbox
    from tests.gateway_harness import wait_until

    rooms = [f"{30100 + i}@chatroom" for i in range(30)]
    for i, room_id in enumerate(rooms):
        gateway.room(room_id, f"扇区{i:02d}联络员群", [ADMIN[0], WANG[0]])
    bot.env.update(
        {
            "RELAYBOT_LIAISON_GROUPS": ",".join(f"扇区{i:02d}联络员群" for i in range(30)),
            "RELAYBOT_SEND_SPACING_SECONDS": "0.4",
        }
    )
    bot.start()
    mark = len(gateway.sent())
    # Another process queues the push (as a cron job would); the running bot sends it.
    queued = relaybot("push", "虚假投资理财", db_url=bot.db_url, cwd=tmp_path)
    assert queued.returncode == 0, queued.stderr
    engine = make_engine(bot.db_url)

    def sent_rows():
        with session(engine) as s:
            return len(s.exec(select(Outbox).where(Outbox.push_id == 1, Outbox.state == "sent")).all())

    # Kill right after the 8th group's copy is on record, between two sends of the fan-out.
    wait_until(sent_rows, lambda n: n >= 8, 30, "eight groups to have the push")
    bot.kill()
    done_before = sent_rows()
    assert 8 <= done_before < 30

    bot.start()
    gateway.wait_sent(
        lambda items: {i["conversation_id"] for i in items if i["text"].startswith("【反诈预警 #1】")} >= set(rooms),
        since=mark,
        timeout=60,
    )
    _time.sleep(1.0)  # a few more sending turns: nothing may follow
    copies = Counter(i["conversation_id"] for i in gateway.sent(mark) if i["text"].startswith("【反诈预警 #1】"))
    assert copies == Counter({r: 1 for r in rooms})
    engine.dispose()


def test_a_screenshot_over_20_kb_is_checked_and_its_verdict_shown_in_progress(gateway, bot):
    from pathlib import Path

    from tests.gateway_harness import wait_until

    bot.start()
    mark = len(gateway.sent())
    gateway.say(ADMIN[0], "推送 刷单", room=OFFICE_ROOM)
    gateway.wait_sent(has_text(LIAISON_ROOM, "【反诈预警 #1】"), since=mark, timeout=10)
    data = (Path(__file__).parent.parent / "data" / "screenshots" / "unit_1080.png").read_bytes()
    assert len(data) > 20 * 1024  # arrives through the gateway's Download stream
    gateway.image(WANG[0], "Screenshot_20261126.png", data, room=LIAISON_ROOM)
    engine = make_engine(bot.db_url)

    def verdict():
        with session(engine) as s:
            conf = s.exec(select(Confirmation)).first()
            return conf.verdict if conf else ""

    wait_until(verdict, lambda v: v != "", 60, "the screenshot's verdict")
    engine.dispose()
    mark = len(gateway.sent())
    gateway.say(ADMIN[0], "进度", room=OFFICE_ROOM)
    sent = gateway.wait_sent(has_text(OFFICE_ROOM, "截图："), since=mark, timeout=10)
    assert "截图：已核验 1，未核验 0，存疑 0，待核验 0" in texts_to(sent, OFFICE_ROOM)[-1]
