"""Hardening: only an office admin's contact id can change anything, and a liaison confirms for their own unit only.

Every table's rows are compared before and after each attempt. A stranger (an impostor with the admin's WeChat name
and group nickname, near-miss ids, a liaison) may cause exactly what the code gives strangers: a refusal reply and a
refused audit row for what looks like a command, the one-time private introduction, the liaison help, a refused
invitation audit row, and a membership row for whoever speaks in a room. The same command from the admin then shows
that it would have changed something. Extends tests/handlers/test_groups_and_people.py (a liaison's 设为办公群, a liaison's
invitation) to every office command, file, link and invitation, and to senders with the admin's names.
"""

from __future__ import annotations

import io

import httpx
import pytest
from hypothesis import given
from hypothesis import strategies as st
from sqlmodel import SQLModel, select

from bot.content import load_texts
from bot.domain.roster import import_roster, parse_table
from bot.storage.db import session
from bot.storage.models import Confirmation, Feed, FeedItem, Liaison, Unit
from bot.transport.base import FileData, Image, LinkCard, Member
from tests.conftest import (
    ADMIN,
    EXAMPLE_ROSTER,
    LI,
    LIAISON_ROOM,
    OFFICE_ROOM,
    SUN,
    WANG,
    WU,
    ZHAO,
    ZHENG,
    ZHOU,
)
from tests.hardening_strategies import FAST, ODD

TEXTS = load_texts()
REFUSED = TEXTS.t("access.refused")
HELP = TEXTS.t("help.liaison")
UNREGISTERED = TEXTS.t("confirm.unregistered")
OTHER_ROOM = "other@chatroom"
QUOTE_LINE = "- - - - - - - - - - - - - - -"
ARTICLE = "https://example.invalid/article"

IMPOSTOR = Member("wxid_fake", ADMIN.name, ADMIN.group_nickname)
# Near misses of the admin's id, and a liaison: none of them is an admin.
NOT_ADMINS = [
    IMPOSTOR,
    Member(ADMIN.contact_id + " ", ADMIN.name, ADMIN.group_nickname),
    Member(ADMIN.contact_id.upper(), ADMIN.name, ADMIN.group_nickname),
    Member(ADMIN.contact_id + "\u200b", ADMIN.name, ADMIN.group_nickname),
    Member("\u202e" + ADMIN.contact_id, ADMIN.name, ADMIN.group_nickname),
    Member("", ADMIN.name, ADMIN.group_nickname),
    WANG,
]
UNIT_OF = {
    WANG.contact_id: "城关镇",
    ZHAO.contact_id: "城关镇",
    LI.contact_id: "东城街道",
    ZHOU.contact_id: "西湖镇",
    SUN.contact_id: "区教育局",
    WU.contact_id: "区卫健局",
    ZHENG.contact_id: "金融行业",
}
LIAISONS = [WANG, ZHAO, LI, ZHOU, SUN, WU, ZHENG]


# --- snapshots ------------------------------------------------------------------------------------


def snapshot(engine) -> dict[str, set[tuple]]:
    """Every row of every table, as hashable tuples of (column, value)."""
    out = {}
    with engine.connect() as conn:
        for table in SQLModel.metadata.sorted_tables:
            names = [c.name for c in table.columns]
            out[table.name] = {tuple(zip(names, row, strict=True)) for row in conn.execute(table.select())}
    return out


def changes(before, after) -> dict[str, tuple[list[dict], list[dict]]]:
    """Per changed table: (rows added, rows removed); an updated row is both."""
    return {
        name: ([dict(r) for r in after[name] - before[name]], [dict(r) for r in before[name] - after[name]])
        for name in after
        if after[name] != before[name]
    }


def stranger_diff_problems(
    diff, *, sender: Member, chat_id: str, in_room: bool, outcome: str, command: str = ""
) -> list[str]:
    """What in `diff` goes beyond exactly what the code writes for a non-admin (empty when nothing does)."""
    diff = dict(diff)
    problems = []
    m_added, m_removed = diff.pop("membership", ([], []))
    if any(r["contact_id"] != sender.contact_id or r["room_id"] != chat_id for r in m_added + m_removed) or (
        (m_added or m_removed) and not in_room
    ):
        problems.append(f"membership rows of others changed: {m_added} {m_removed}")
    audits, audits_gone = diff.pop("auditlog", ([], []))
    outbox, outbox_gone = diff.pop("outbox", ([], []))
    notices, notices_gone = diff.pop("notice", ([], []))
    if audits_gone or outbox_gone or notices_gone:
        problems.append("rows were changed or deleted in auditlog/outbox/notice")
    if diff:
        problems.append(f"tables changed: {sorted(diff)}: {diff}")
    got_audit = sorted((a["action"], a["allowed"], a["actor_id"]) for a in audits)
    got_outbox = sorted((o["chat_id"], o["text"], o["state"], o["file_name"]) for o in outbox)
    got_notices = sorted((n["kind"], n["key"]) for n in notices)
    # A courtesy reply (help, a refusal) is remembered per person: at most one an hour (issue 12 item 2).
    answered = ("courtesy_reply", sender.contact_id)
    want_audit, want_outbox, want_notices = {
        "refused": (
            [(f"refused:{command}", False, sender.contact_id)],
            [(chat_id, REFUSED, "pending", "")],
            [answered],
        ),
        "intro": ([], [(chat_id, HELP, "pending", "")], [answered, ("private_intro", sender.contact_id)]),
        "help": ([], [(chat_id, HELP, "pending", "")], [answered]),
        "invite": ([("room_invite", False, sender.contact_id)], [], []),
        "silent": ([], [], []),
    }[outcome]
    for what, got, want in (
        ("audit", got_audit, want_audit),
        ("outbox", got_outbox, want_outbox),
        ("notice", got_notices, want_notices),
    ):
        if got != want:
            problems.append(f"{what}: got {got}, expected {want}")
    return problems


# --- the office set up so that every command would change something --------------------------------


class Previews:
    """Link previews are fetched from here; counts the fetches."""

    def __init__(self) -> None:
        self.requests: list[str] = []

    def __call__(self, request: httpx.Request) -> httpx.Response:
        self.requests.append(str(request.url))
        page = b'<html><head><meta property="og:title" content="\xe8\xad\xa6\xe6\x83\x95"></head></html>'
        return httpx.Response(200, headers={"content-type": "text/html; charset=utf-8"}, content=page)


@pytest.fixture
async def office(bot, transport, engine, clock):
    """An open push #1, an admin draft, a leave, a feed candidate 1, a served and an unserved room, fake previews."""
    for room_id in (LIAISON_ROOM, OFFICE_ROOM):
        transport.members[room_id].extend(m for m in NOT_ADMINS if m != WANG)
    transport.add_room(OTHER_ROOM, "某个新群", [ADMIN, *NOT_ADMINS])
    previews = Previews()
    await bot.http.aclose()
    bot.http = httpx.AsyncClient(transport=httpx.MockTransport(previews))
    await transport.say(ADMIN, "你好", room_id=OTHER_ROOM)  # the bot has seen this room (it does not serve it)
    await transport.say(ADMIN, "推送 刷单", room_id=OFFICE_ROOM)
    await transport.say(ADMIN, "今晚发布新的反诈提示")  # a draft, for a bare 推送
    await transport.say(ADMIN, "请假 城关镇 11月26日至12月2日", room_id=OFFICE_ROOM)
    with session(engine) as s:
        feed = Feed(url="https://feed.invalid/rss")
        s.add(feed)
        s.flush()
        s.add(FeedItem(feed_id=feed.id, guid="g1", title="候选文章", link="https://feed.invalid/1", seen_at=clock()))
        s.commit()
    await bot.send_pending()
    transport.sent.clear()
    previews.requests.clear()
    return previews


def _place(place: str, sender: Member) -> tuple[str | None, str, bool]:
    """(room id for the transport, chat id the bot sees, in a room)."""
    room = {"office": OFFICE_ROOM, "liaison": LIAISON_ROOM, "other": OTHER_ROOM, "private": None}[place]
    return room, (room or sender.contact_id), room is not None


# (text, where, what the code does for a non-admin)
COMMANDS = [
    ("推送 刷单", "office", "refused"),
    ("推送 公检法", "private", "refused"),
    ("推送", "office", "refused"),  # the admin's draft
    ("推送 候选1", "office", "refused"),
    (f"推送 {ARTICLE}", "office", "silent"),
    (f"推送 {ARTICLE}", "private", "intro"),
    (f"「{ADMIN.name}：今晚发布新的反诈提示」\n{QUOTE_LINE}\n推送", "private", "refused"),
    ("进度", "office", "refused"),
    ("进度 #1", "private", "refused"),
    ("提醒 #1", "office", "refused"),
    ("提醒 #1", "liaison", "refused"),
    ("截止 #1 明天12:00", "office", "refused"),
    ("撤回 #1", "office", "refused"),
    ("撤回 ＃１", "private", "refused"),
    ("@反诈助手\u2005撤回 #1", "office", "refused"),
    ("撤\u200b回 #1", "office", "refused"),
    ("补登 区卫健局 #1 电话确认", "office", "refused"),
    ("补登 区卫健局 #1 电话确认", "private", "refused"),
    ("撤销 城关镇 #1 误记", "office", "refused"),
    ("免转 区教育局 ＃１ 不涉及", "private", "refused"),
    ("免转 区教育局 #1 不涉及", "liaison", "refused"),
    ("设为联络员群", "other", "refused"),
    ("取消联络员群", "liaison", "refused"),
    ("设为办公群", "liaison", "refused"),
    ("设为办公群", "other", "refused"),
    ("取消办公群", "office", "refused"),
    ("休息日 2026-11-27", "office", "silent"),
    ("工作日 2026-11-28", "private", "intro"),
    ("请假 东城街道 11月30日至12月2日", "office", "silent"),
    ("销假 城关镇", "private", "intro"),
    ("报表 周", "office", "silent"),
    ("报表", "private", "refused"),
    ("单位 城关镇", "office", "silent"),
    ("警情", "office", "refused"),
    ("警情 2026-W47", "private", "intro"),
    ("帮助", "office", "help"),
]


def _name(text: str) -> str:
    from bot.chat.parsing import parse_command, parse_quote

    quote = parse_quote(text)
    return parse_command(quote.reply if quote else text).name


@pytest.mark.parametrize("text, place, outcome", COMMANDS)
async def test_only_the_admin_id_can_command(office, bot, transport, engine, text, place, outcome):
    for sender in NOT_ADMINS:
        room, chat_id, in_room = _place(place, sender)
        before = snapshot(engine)
        await transport.say(sender, text, room_id=room)
        problems = stranger_diff_problems(
            changes(before, snapshot(engine)),
            sender=sender,
            chat_id=chat_id,
            in_room=in_room,
            outcome=outcome,
            command=_name(text),
        )
        assert not problems, (sender, problems)
    assert office.requests == [], "a non-admin's link was fetched"
    # The same words from the admin's id do change something here.
    room, chat_id, in_room = _place(place, ADMIN)
    before = snapshot(engine)
    await transport.say(ADMIN, text, room_id=room)
    assert stranger_diff_problems(
        changes(before, snapshot(engine)),
        sender=ADMIN,
        chat_id=chat_id,
        in_room=in_room,
        outcome=outcome,
        command=_name(text),
    )


def _stats_csv() -> bytes:
    return "镇街,周期,案件类型,警情数\n城关镇,2026-W47,刷单,3\n西湖镇,2026-W47,刷单,1\n".encode()


def _stats_xlsx() -> bytes:
    from openpyxl import Workbook

    wb = Workbook()
    for row in (["镇街", "周期", "案件类型", "警情数"], ["城关镇", "2026-W47", "刷单", 3]):
        wb.active.append(row)
    out = io.BytesIO()
    wb.save(out)
    return out.getvalue()


def _png() -> bytes:
    from PIL import Image as PILImage

    out = io.BytesIO()
    PILImage.new("RGB", (20, 20), (10, 200, 10)).save(out, format="PNG")
    return out.getvalue()


# (what is sent, where, what the code does for a non-admin)
ITEMS = [
    ("stats.xlsx", "office", "silent"),
    ("stats.xlsx", "private", "intro"),
    ("stats.csv", "private", "intro"),
    ("bare link", "private", "intro"),
    ("bare link", "office", "silent"),
    ("link card", "private", "intro"),
    ("image", "private", "intro"),
]


async def _send_item(transport, sender: Member, item: str, room: str | None) -> None:
    if item == "stats.xlsx":
        await transport.send_file(sender, FileData("警情.xlsx", _stats_xlsx()), room_id=room)
    elif item == "stats.csv":
        await transport.send_file(sender, FileData("警情.csv", _stats_csv()), room_id=room)
    elif item == "bare link":
        await transport.say(sender, ARTICLE, room_id=room)
    elif item == "link card":
        await transport.send_link(sender, LinkCard(ARTICLE, "假冒的预警", "描述"), room_id=room)
    else:
        await transport.send_image(sender, Image("预警.png", _png()), room_id=room)


@pytest.mark.parametrize("item, place, outcome", ITEMS)
async def test_only_the_admin_id_can_import_figures_or_leave_items_to_push(
    office, bot, transport, engine, item, place, outcome
):
    for sender in NOT_ADMINS:
        room, chat_id, in_room = _place(place, sender)
        before = snapshot(engine)
        await _send_item(transport, sender, item, room)
        problems = stranger_diff_problems(
            changes(before, snapshot(engine)), sender=sender, chat_id=chat_id, in_room=in_room, outcome=outcome
        )
        assert not problems, (sender, problems)
    assert office.requests == [], "a non-admin's link was fetched"
    room, chat_id, in_room = _place(place, ADMIN)
    before = snapshot(engine)
    await _send_item(transport, ADMIN, item, room)
    diff = changes(before, snapshot(engine))
    # The app fetches a preview for an admin's bare link wherever it is sent; only a private one becomes a draft.
    assert office.requests == ([ARTICLE] if item == "bare link" else [])
    if (item, place) != ("bare link", "office"):
        expected_table = "incidentstat" if item.startswith("stats") else "alert"
        assert diff.get(expected_table, ([], []))[0], f"the admin's {item} changed nothing: {sorted(diff)}"


async def test_only_the_admin_id_gets_the_bot_into_a_room(office, bot, transport, engine):
    # A bound liaison (WANG) may bring the bot into the unit's own group: tests/handlers/test_reach.py.
    for n, sender in enumerate(s for s in NOT_ADMINS if s is not WANG):
        before = snapshot(engine)
        await transport.invite(f"inv-{n}", sender.contact_id, "假的联络员群")
        problems = stranger_diff_problems(
            changes(before, snapshot(engine)), sender=sender, chat_id="", in_room=False, outcome="invite"
        )
        assert not problems, (sender, problems)
    assert transport.accepted_invites == []
    await transport.invite("inv-admin", ADMIN.contact_id, "南片联络员群")
    assert transport.accepted_invites == ["inv-admin"]


# --- a liaison confirms for their own unit only ---------------------------------------------------


def confirmed(engine, push_id: int | None = None) -> dict[str, str]:
    """Unit name -> contact id of the liaison the confirmation was recorded for."""
    with session(engine) as s:
        stmt = select(Confirmation)
        if push_id is not None:
            stmt = stmt.where(Confirmation.push_id == push_id)
        return {s.get(Unit, c.unit_id).name: s.get(Liaison, c.liaison_id).contact_id for c in s.exec(stmt)}


@pytest.fixture
async def two_pushes(bot, transport):
    await transport.say(ADMIN, "推送 刷单", room_id=OFFICE_ROOM)
    await transport.say(ADMIN, "推送 公检法", room_id=OFFICE_ROOM)
    await bot.send_pending()
    push_text = next(o.text for o in transport.sent if o.chat_id == LIAISON_ROOM and "#1" in o.text)
    transport.sent.clear()
    return push_text


# (who, what they type, whether it confirms at all): never for the unit named, only ever for their own. A reply
# that names only another unit is not credited to anyone: the bot asks the sender about their own unit instead.
OTHER_UNIT_CLAIMS = [
    (WANG, "已转发 西湖镇", False),
    (WANG, "西湖镇、东城街道、区教育局 都已转发", False),
    (ZHOU, "#1 城关镇已转发", False),
    (ZHOU, "#2 城关镇 已转发 👍", False),
    (LI, f"「王芳-城关镇：城关镇已转发」\n{QUOTE_LINE}\n已转发", True),  # the quoted words are not his
    (LI, f"「王芳-城关镇：已转发 #1」\n{QUOTE_LINE}\n城关镇已转发", False),
    (SUN, "代城关镇、西湖镇已转发", False),  # on another unit's behalf
    (ZHENG, "已转发\u200b城\u200d关\u200f镇", False),
    (WU, "城关镇已转发#1", False),
    (ZHAO, "＃１　西湖镇　已转发", False),
    (WANG, "城关镇、西湖镇都已转发", True),  # names its own unit too
]


@pytest.mark.parametrize("sender, text, counts", OTHER_UNIT_CLAIMS)
async def test_a_liaison_confirms_only_for_their_own_unit(two_pushes, transport, engine, sender, text, counts):
    await transport.say(sender, text, room_id=LIAISON_ROOM)
    got = confirmed(engine)
    assert got == ({UNIT_OF[sender.contact_id]: sender.contact_id} if counts else {}), got


async def test_quote_reply_to_the_push_confirms_for_the_sender_only(two_pushes, transport, engine):
    quote = f"「反诈助手：{two_pushes[:60]}」\n{QUOTE_LINE}\n城关镇、西湖镇已转发"
    await transport.say(LI, quote, room_id=LIAISON_ROOM)
    assert confirmed(engine, 1) == {}  # names only other units: nobody is credited; he is asked about his own
    await transport.say(
        LI, f"「反诈助手：{two_pushes[:60]}」\n{QUOTE_LINE}\n东城街道、城关镇已转发", room_id=LIAISON_ROOM
    )
    assert confirmed(engine, 1) == {"东城街道": LI.contact_id}


async def test_a_screenshot_counts_for_the_sender_unit_only(bot, two_pushes, transport, engine):
    bot.evidence.ocr = False
    await transport.say(WANG, "已转发 #1", room_id=LIAISON_ROOM)
    # Another unit's liaison posts a screenshot right after: it is not evidence for 城关镇, and confirms 西湖镇's own.
    await transport.send_image(ZHOU, Image("城关镇已转发.png", _png()), room_id=LIAISON_ROOM)
    assert confirmed(engine) == {"城关镇": WANG.contact_id, "西湖镇": ZHOU.contact_id}
    with session(engine) as s:
        by_unit = {s.get(Unit, c.unit_id).name: c for c in s.exec(select(Confirmation))}
    assert by_unit["城关镇"].evidence_file == "" and by_unit["西湖镇"].evidence_file != ""


@pytest.mark.parametrize(
    "impostor, unit",
    [
        (Member("wxid_fake_wang", WANG.name, WANG.group_nickname), "城关镇"),  # a liaison known by id
        (Member("wxid_fake_zhou", ZHOU.name, ZHOU.group_nickname), "西湖镇"),  # a liaison recognised by name
        (Member("wxid_fake_wu", WU.name, ""), "区卫健局"),
    ],
)
async def test_a_liaison_name_does_not_make_someone_a_liaison(two_pushes, bot, transport, engine, impostor, unit):
    transport.members[LIAISON_ROOM].append(impostor)
    for text in ("已转发", "已转发 #1", f"{unit}已转发"):
        await transport.say(impostor, text, room_id=LIAISON_ROOM)
    await transport.send_image(impostor, Image("x.png", _png()), room_id=LIAISON_ROOM)
    assert confirmed(engine) == {}
    await bot.send_pending()
    sent = [(o.chat_id, o.text, o.mention_ids) for o in transport.sent]
    by_name = {"西湖镇": "周敏", "区卫健局": "吴刚"}  # recognised by name, not by a roster 微信ID
    if unit in by_name:
        # The name matches a liaison recognised by name: the office hears of two people for one roster entry
        # (issue 12 item 7), and the newcomer is told so once, not that he is not on the roster.
        claimed = bot.texts.t(
            "groups.claimed",
            room="全区反诈联络员群",
            who=impostor.group_nickname or impostor.name,
            name=by_name[unit],
            unit=unit,
        )
        assert sorted(sent) == sorted(
            [
                (OFFICE_ROOM, claimed, ()),
                (LIAISON_ROOM, bot.texts.t("confirm.claim_pending"), (impostor.contact_id,)),
            ]
        )
    else:
        # Told once to register with the office, nothing more.
        assert sent == [(LIAISON_ROOM, UNREGISTERED, (impostor.contact_id,))]
    with session(engine) as s:
        assert s.exec(select(Liaison).where(Liaison.contact_id == impostor.contact_id)).all() == []


async def test_a_liaison_of_two_units_confirms_the_one_named_never_a_third(bot, transport, engine):
    rows = [line.split(",") for line in EXAMPLE_ROSTER.read_text(encoding="utf-8").splitlines()]
    rows.append(["金融行业", "行业", "王芳", "wxid_wangfang", "王芳-城关镇", "13800000001", "备"])
    with session(engine) as s:
        import_roster(s, parse_table(rows))
        s.commit()
    await transport.say(ADMIN, "推送 刷单", room_id=OFFICE_ROOM)
    await transport.say(WANG, "金融行业已转发", room_id=LIAISON_ROOM)
    assert confirmed(engine) == {"金融行业": WANG.contact_id}
    await transport.say(WANG, "西湖镇已转发", room_id=LIAISON_ROOM)  # not one of hers: credited to nobody
    assert confirmed(engine) == {"金融行业": WANG.contact_id}
    await transport.say(WANG, "城关镇已转发", room_id=LIAISON_ROOM)
    assert confirmed(engine) == {"金融行业": WANG.contact_id, "城关镇": WANG.contact_id}


_unit_names = ["城关镇", "东城街道", "西湖镇", "区教育局", "区卫健局", "金融行业", "城关", "西湖", "教育局"]
_claims = st.lists(
    st.one_of(
        st.sampled_from(_unit_names),
        st.sampled_from(
            ["已转发", "已转", "转发了", "都已转发", "#1", "#2", "#3", "＃１", "代", "和", "、", "👍", " ", "收到"]
        ),
        st.sampled_from(ODD),
    ),
    min_size=1,
    max_size=8,
).map("".join)


@FAST
@given(
    sender=st.sampled_from(LIAISONS),
    claim=_claims,
    quote_of=st.sampled_from([None, *LIAISONS]),
    push_first=st.booleans(),
)
async def test_whatever_a_liaison_types_only_their_unit_is_confirmed(
    bot, transport, engine, sender, claim, quote_of, push_first
):
    if push_first:
        await transport.say(ADMIN, "推送 刷单", room_id=OFFICE_ROOM)
    text = claim
    if quote_of is not None:
        text = f"「{quote_of.group_nickname or quote_of.name}：{UNIT_OF[quote_of.contact_id]}已转发」\n{QUOTE_LINE}\n{claim}"
    before = set(snapshot(engine)["confirmation"])
    await transport.say(sender, text, room_id=LIAISON_ROOM)
    new = [dict(r) for r in set(snapshot(engine)["confirmation"]) - before]
    with session(engine) as s:
        units = {s.get(Unit, r["unit_id"]).name for r in new}
        people = {s.get(Liaison, r["liaison_id"]).contact_id for r in new}
    assert units <= {UNIT_OF[sender.contact_id]} and people <= {sender.contact_id}, (text, units, people)
