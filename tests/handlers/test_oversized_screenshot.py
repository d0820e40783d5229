"""An image that cannot be kept as evidence (issue 12 item 12, the screenshot part).

Over the 20 MB cap (a photo sent as 原图) or not received from the transport, an image counted as a confirmation
with no file and no verdict: 进度 and the report could not tell it from a checked one. Now the confirmation stands
(the liaison did forward), marked 未核验 with the reason the report shows; the liaison is told once a day to send a
screenshot, and a screenshot sent soon after takes the image's place and is checked.
"""

from __future__ import annotations

import io

from openpyxl import load_workbook
from sqlmodel import select

from bot.domain.evidence import MAX_IMAGE_BYTES
from bot.storage.db import session
from bot.storage.models import Confirmation
from bot.transport.base import Image, MessageKind
from tests.conftest import ADMIN, LI, LIAISON_ROOM, OFFICE_ROOM, WANG
from tests.handlers.test_evidence_chat import progress, pushed, shot  # noqa: F401  (pushed: a fixture)

TOO_BIG = "图片过大（超过 20 MB），未能核验"
NOTICE = f"{TOO_BIG}。转发已记录；如需核验，请重发截图（不要发原图）。"


def big_photo() -> Image:
    return Image("IMG_0001.jpg", b"\xff\xd8\xff" + bytes(MAX_IMAGE_BYTES))


def confirmations(engine) -> list[Confirmation]:
    with session(engine) as s:
        return list(s.exec(select(Confirmation)))


async def test_an_image_over_the_cap_counts_as_unchecked_with_its_reason(pushed, transport, engine, settings):  # noqa: F811
    bot = pushed
    transport.sent.clear()  # the push
    await transport.send_image(WANG, big_photo(), room_id=LIAISON_ROOM)
    await transport.send_image(WANG, big_photo(), room_id=LIAISON_ROOM)  # again: told once
    await bot.send_pending()
    [conf] = confirmations(engine)
    assert (conf.method, conf.evidence_file, conf.verdict, conf.verdict_reason) == ("image", "", "未核验", TOO_BIG)
    told = [o for o in transport.sent if o.chat_id == LIAISON_ROOM]
    assert [o.text for o in told] == [NOTICE] and told[0].mention_ids == (WANG.contact_id,)
    assert "未核验 1" in await progress(bot, transport)
    assert await bot.check_evidence() == 0  # nothing to check, nothing stored
    transport.sent.clear()
    await transport.say(ADMIN, "报表 日", room_id=OFFICE_ROOM)
    await bot.send_pending()
    xlsx = next(o.file for o in transport.sent if o.file)
    rows = [[c.value for c in r] for r in load_workbook(io.BytesIO(xlsx.data))["截图核验"].iter_rows(min_row=2)]
    assert rows == [["#1", "城关镇", "未核验", TOO_BIG]]


async def test_a_screenshot_sent_after_it_takes_its_place_and_is_checked(pushed, transport, engine):  # noqa: F811
    bot = pushed
    await transport.send_image(WANG, big_photo(), room_id=LIAISON_ROOM)
    await transport.send_image(WANG, shot("unit_1080.png"), room_id=LIAISON_ROOM)
    [conf] = confirmations(engine)
    assert conf.evidence_file and conf.verdict == ""
    assert await bot.check_evidence() == 1
    [conf] = confirmations(engine)
    assert (conf.verdict, conf.verdict_reason) == ("已核验", "截图中有推送标题")


async def test_an_image_the_transport_could_not_fetch_is_unchecked_too(pushed, transport, engine):  # noqa: F811
    bot = pushed
    transport.sent.clear()
    await transport.say(LI, "", room_id=LIAISON_ROOM, kind=MessageKind.IMAGE, image=None)
    await bot.send_pending()
    [conf] = confirmations(engine)
    assert (conf.method, conf.verdict, conf.verdict_reason) == ("image", "未核验", "图片没有收到，未能核验")
    assert [o.text for o in transport.sent if o.chat_id == LIAISON_ROOM] == [
        "图片没有收到，未能核验。转发已记录；如需核验，请重发截图（不要发原图）。"
    ]


async def test_a_text_confirmation_keeps_its_record_when_its_photo_is_too_big(pushed, transport, engine):  # noqa: F811
    await transport.say(WANG, "已转发", room_id=LIAISON_ROOM)
    await transport.send_image(WANG, big_photo(), room_id=LIAISON_ROOM)
    [conf] = confirmations(engine)
    assert (conf.method, conf.verdict, conf.verdict_reason) == ("text", "未核验", TOO_BIG)
