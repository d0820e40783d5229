"""`relaybot demo`: a scripted day of the relay loop through the in-memory transport, printed as a chat log."""

from __future__ import annotations

import io
import tempfile
from datetime import datetime, time
from pathlib import Path
from typing import TextIO
from zoneinfo import ZoneInfo

from sqlmodel import select

from bot.adapters.screenshot_check import REASON_NO_OCR
from bot.clock import FakeClock
from bot.config import Settings
from bot.content import EXAMPLE_ROSTER, load_texts
from bot.domain.roster import import_roster, read_roster, read_roster_file
from bot.runtime.app import build_bot
from bot.storage.db import create_schema, make_engine, session
from bot.storage.models import Confirmation
from bot.transport.base import ChatKind, Image, Incoming, Member, MessageKind
from bot.transport.memory import MemoryTransport

TZ = ZoneInfo("Asia/Shanghai")

ADMIN = Member("admin-chen", "陈静", "反诈办-陈静")
WANG = Member("wxid_wangfang", "王芳", "王芳-城关镇")
LI = Member("wxid_liqiang", "李强", "东城李强")
ZHOU = Member("wxid_zm2024", "小敏", "周敏（西湖镇）")  # not in the roster by id: recognised by group nickname
SUN = Member("wxid_sunli", "孙丽", "")
WU = Member("wxid_wg88", "吴刚", "")  # recognised by WeChat name
ZHENG = Member("wxid_zhengjie", "郑洁", "")
STRANGER = Member("wxid_passerby", "路人甲", "")
LIAISON_ROOM, LIAISON_NAME = "demo-liaison@chatroom", "全区反诈联络员群"
# 金融行业's own group of staff, where 郑洁 brings the bot in at the end of the day (reach, observed).
UNIT_ROOM, UNIT_NAME = "demo-bank-staff@chatroom", "金融行业反诈宣传群"
UNIT_STAFF = [Member(f"wxid_bank{i:02d}", f"员工{i:02d}", "") for i in range(1, 46)]
OFFICE_ROOM, OFFICE_NAME = "demo-office@chatroom", "反诈办工作群"


# The demo's screenshot: what 孙丽 of 区教育局 would post after forwarding #1 into her unit's own group.
DEMO_UNIT_GROUP = "区教育局反诈宣传群(128)"
DEMO_TITLE = "【反诈预警 #1】警惕刷单返利：先给小甜头，再骗大本金"
DEMO_BODY = ("骗子在群聊、短视频平台或招聘", "网站发布兼职，说动动手指就能", "日赚几百……")
# 标签 the office adds to the example roster for the targeted push (精准滴灌) at the end of the day.
DEMO_TAGS = {"区教育局": "学校", "区卫健局": "医院", "金融行业": "银行"}


def ranking_columns(xlsx: bytes, wanted: tuple[str, ...]) -> list[str]:
    """Some columns of the report's 单位排名 sheet, one line per unit, as the office sees them in Excel."""
    import openpyxl

    sheet = openpyxl.load_workbook(io.BytesIO(xlsx), read_only=True)["单位排名"]
    rows = [[("" if v is None else str(v)) for v in row] for row in sheet.iter_rows(values_only=True)]
    header = next((i for i, row in enumerate(rows) if "单位" in row and "覆盖人数" in row), None)
    if header is None:
        return []
    index = [rows[header].index(name) for name in wanted if name in rows[header]]
    return [" | ".join(row[i] for i in index) for row in rows[header:] if any(row)]


def tagged_roster() -> bytes:
    """The example roster with a 标签 column, as a clerk would add it."""
    lines = EXAMPLE_ROSTER.read_text(encoding="utf-8").strip().splitlines()
    out = [lines[0] + ",标签"] + [line + "," + DEMO_TAGS.get(line.split(",")[0], "") for line in lines[1:]]
    return ("\n".join(out) + "\n").encode()


def demo_screenshot(group: str, title: str) -> bytes:
    """A phone screenshot of a WeChat group with the forwarded alert, drawn with the charts' CJK font: a real
    JPEG that the screenshot check can read (the title in the body, the unit's group in the header)."""
    from PIL import Image as Picture
    from PIL import ImageDraw, ImageFont

    from bot.reports.render import cjk_font_path

    font = str(cjk_font_path())
    width, height = 720, 1280
    img = Picture.new("RGB", (width, height), (237, 237, 237))
    draw = ImageDraw.Draw(img)
    draw.rectangle((0, 0, width, 150), fill=(247, 247, 247))
    draw.text((30, 20), "09:15", font=ImageFont.truetype(font, 28), fill=(0, 0, 0))
    draw.text((width // 2, 100), group, font=ImageFont.truetype(font, 34), fill=(0, 0, 0), anchor="mm")
    draw.rectangle((30, 220, 95, 285), fill=(90, 140, 200))  # the sender's avatar
    draw.rounded_rectangle((110, 220, 680, 520), 12, fill=(255, 255, 255))
    body = ImageFont.truetype(font, 30)
    for i, line in enumerate((title[:14], title[14:], *DEMO_BODY)):
        draw.text((135, 240 + 50 * i), line, font=body, fill=(0, 0, 0))
    out = io.BytesIO()
    img.save(out, "JPEG", quality=85)
    return out.getvalue()


class _Printer:
    def __init__(self, transport: MemoryTransport, clock: FakeClock, out: TextIO) -> None:
        self.transport, self.clock, self.out, self.seen = transport, clock, out, 0

    def stamp(self) -> str:
        return self.clock().astimezone(TZ).strftime("%H:%M")

    def incoming(self, msg: Incoming) -> None:
        where = self.transport.room_name(msg.chat_id) if msg.chat_kind == ChatKind.ROOM else "私聊机器人"
        body = f"[截图 {msg.image.name}]" if msg.image else msg.text
        first, *rest = body.splitlines() or [""]
        print(f"{self.stamp()} [{where}] {msg.sender.group_nickname or msg.sender.name}: {first}", file=self.out)
        for line in rest:
            print(f"      {line}", file=self.out)

    def outgoing(self) -> None:
        for out in self.transport.sent[self.seen :]:
            first, *rest = self.transport.render(out).splitlines() or [""]
            print(f"{self.stamp()} {first}", file=self.out)
            for line in rest:
                print(f"      {line}", file=self.out)
        self.seen = len(self.transport.sent)

    def note(self, text: str) -> None:
        print(f"\n—— {text} ——", file=self.out)


async def run_demo(out: TextIO, workdir: Path | None = None) -> Path:
    """Play the scripted day; returns the SQLite file it used."""
    folder = Path(workdir or tempfile.mkdtemp(prefix="relaybot-demo-"))
    db_file = folder / "relaybot-demo.db"  # a quoted demo dot db would read as a text key of [demo]
    db_file.unlink(missing_ok=True)
    settings = Settings(
        database_url=f"sqlite:///{db_file}",
        admin_ids=[ADMIN.contact_id],
        liaison_groups=[LIAISON_NAME],
        office_group=OFFICE_NAME,
        ack_quiet_seconds=60,
        evidence_dir=str(folder / "evidence"),
        reminder_times=[time(10, 0)],  # one automatic reminder is enough to show in the demo
    )
    engine = make_engine(settings.database_url)
    create_schema(engine)
    with session(engine) as s:
        report = import_roster(s, read_roster_file(EXAMPLE_ROSTER))
        s.commit()
    clock = FakeClock(datetime(2026, 11, 26, 9, 0, tzinfo=TZ))  # a Thursday
    transport = MemoryTransport(bot_id="demo-bot")
    transport.add_room(LIAISON_ROOM, LIAISON_NAME, [ADMIN, WANG, LI, ZHOU, SUN, WU, ZHENG, STRANGER])
    transport.add_room(OFFICE_ROOM, OFFICE_NAME, [ADMIN])
    printer = _Printer(transport, clock, out)
    # The demo drives sending and the screenshot check itself (send_loop=False): what it prints is in order.
    bot = build_bot(settings, transport, engine=engine, clock=clock, send_loop=False)
    texts = load_texts()

    print(texts.t("demo.title", path=db_file), file=out)
    print(texts.t("demo.roster") + "；".join(report.lines()), file=out)
    await bot.start()

    async def step(minutes: float, who: Member, text: str = "", room: str | None = LIAISON_ROOM, image: bool = False):
        clock.advance(minutes=minutes)
        if image:
            shot = Image("转发截图.jpg", demo_screenshot(DEMO_UNIT_GROUP, DEMO_TITLE))
            msg = transport.incoming(who, room_id=room, kind=MessageKind.IMAGE, image=shot)
        else:
            msg = transport.incoming(who, text, room_id=room)
        printer.incoming(msg)
        await bot.on_message(msg)
        await flush()
        if image:
            await check_screenshot()

    async def check_screenshot():
        # The check the running bot does in the background, done here at once, so the demo shows its verdict.
        await bot.check_evidence()
        with session(engine) as s:
            row = s.exec(select(Confirmation).where(Confirmation.verdict != "")).first()
        if row is None:
            return
        if row.verdict_reason == REASON_NO_OCR:
            printer.note(texts.t("demo.screenshot_skipped"))
        else:
            printer.note(texts.t("demo.screenshot_verdict", status=row.verdict, reason=row.verdict_reason))

    async def flush():
        await bot.send_pending()
        printer.outgoing()

    async def tick(hour: int, minute: int):
        clock.now = clock.now.astimezone(TZ).replace(hour=hour, minute=minute, second=0)
        await bot.run_schedule()
        await bot.renderer.render_pending()  # the report's files, made after the schedule's unit of work
        await flush()

    async def quiet(minutes: float):
        clock.advance(minutes=minutes)
        await bot.flush_acks()
        await flush()

    printer.note("反诈办推送预警")
    await step(0, ADMIN, "推送 刷单", OFFICE_ROOM)
    printer.note("各单位联络员用不同方式确认")
    await step(12, WANG, "城关镇 已转发 #1 👍")
    await step(
        1, LI, "「反诈助手：【反诈预警 #1】警惕刷单返利：所有刷单都是诈骗」\n- - - - - - - - - - - - - - -\n已转"
    )
    await step(2, SUN, image=True)
    await step(1, ZHOU, "已转发到各村居群")
    await step(1, STRANGER, "已转发")
    await step(1, WU, "请问怎么转发？")
    printer.note("群里安静一分钟后，机器人一次性确认")
    await quiet(2)
    printer.note("非管理员试图发指令")
    await step(5, LI, "推送 刷单")
    printer.note("10:00 工作日定时提醒（自动）")
    await tick(10, 0)
    printer.note("下午，反诈办查看进度并手动提醒")
    await step(245, ADMIN, "进度", OFFICE_ROOM)
    await step(1, ADMIN, "提醒 #1", OFFICE_ROOM)
    await step(150, ZHENG, "收到，已转发本单位群")
    await quiet(2)
    printer.note("18:00 截止：最终未转发名单（自动）")
    await tick(18, 0)
    printer.note("18:30 每日汇总（自动，附表格和图表）")
    await tick(18, 30)
    printer.note(texts.t("demo.roster_tags"))
    tagged = read_roster("名单.csv", tagged_roster())
    with session(engine) as s:
        print("      " + "；".join(import_roster(s, tagged.rows, columns=tagged.columns).lines()), file=out)
        s.commit()
    printer.note("郑洁把机器人拉进金融行业自己的宣传群（可选）：机器人只认推送的转发，别的聊天不看不存")
    transport.add_room(UNIT_ROOM, UNIT_NAME, [ZHENG, *UNIT_STAFF])
    clock.advance(minutes=2)
    await transport.join(UNIT_ROOM, [Member(transport.bot_id, transport.bot_name, "")], inviter_id=ZHENG.contact_id)
    await flush()
    printer.note("精准滴灌：虚假征信只推给银行，只统计银行")
    await step(3, ADMIN, "推送 征信 给 银行", OFFICE_ROOM)
    printer.note("郑洁把 #2 转发到本单位群，不用在联络员群回复：机器人在单位群看到，记为已转发（已核验），并记下群人数")
    pushed = next(o.text for o in reversed(transport.sent) if o.chat_id == LIAISON_ROOM and "#2】" in o.text)
    await step(8, ZHENG, pushed, UNIT_ROOM)
    await step(1, UNIT_STAFF[0], "收到，谢谢提醒", UNIT_ROOM)
    await quiet(2)
    await step(1, ADMIN, "进度 #2", OFFICE_ROOM)
    printer.note("通报里的“覆盖人数”：单位群里看到转发的人数")
    await step(1, ADMIN, "报表 周", OFFICE_ROOM)
    await bot.renderer.render_pending()
    await flush()
    sheet = next((o.file for o in reversed(transport.sent) if o.file and o.file.name.endswith(".xlsx")), None)
    if sheet is not None:
        printer.note(texts.t("demo.ranking_sheet"))
        for line in ranking_columns(sheet.data, ("单位", "收到", "按时", "未转发", "覆盖人数")):
            print("      " + line, file=out)
    await bot.stop()
    engine.dispose()
    return db_file
