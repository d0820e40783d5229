"""Screenshot evidence in the running bot: stored, checked off the chat's path, shown in 进度, kept for a while."""

from __future__ import annotations

from pathlib import Path

import pytest
from sqlmodel import select

from bot.adapters import screenshot_check as evidence
from bot.domain.evidence import evidence_path
from bot.runtime.app import build_bot
from bot.storage.db import session
from bot.storage.models import Confirmation, Unit
from bot.transport.base import Image
from tests.conftest import ADMIN, LI, LIAISON_ROOM, OFFICE_ROOM, SUN, WANG

SHOTS = Path(__file__).parent.parent / "data" / "screenshots"


def shot(name: str) -> Image:
    return Image(name, (SHOTS / name).read_bytes())


def verdicts(engine) -> dict[str, tuple[str, str]]:
    with session(engine) as s:
        return {s.get(Unit, c.unit_id).name: (c.verdict, c.verdict_reason) for c in s.exec(select(Confirmation))}


async def progress(bot, transport) -> str:
    await transport.say(ADMIN, "进度", room_id=OFFICE_ROOM)
    await bot.send_pending()
    return transport.sent[-1].text


@pytest.fixture
async def pushed(bot, transport):
    await transport.say(ADMIN, "推送 刷单", room_id=OFFICE_ROOM)  # the title the screenshots show
    await bot.send_pending()
    return bot


async def test_screenshots_get_verdicts_shown_in_progress(pushed, transport, engine):
    bot = pushed
    await transport.send_image(WANG, shot("unit_1080.png"), room_id=LIAISON_ROOM)
    await transport.send_image(LI, shot("liaison_group.jpg"), room_id=LIAISON_ROOM)
    await transport.send_image(SUN, shot("reused_unit_1080.jpg"), room_id=LIAISON_ROOM)
    assert {v for v, _ in verdicts(engine).values()} == {""}  # recorded at once, checked later
    assert "待核验 3" in await progress(bot, transport)
    assert await bot.check_evidence() == 3
    assert verdicts(engine) == {
        "城关镇": ("已核验", "截图中有推送标题"),
        "东城街道": ("存疑", "截图是联络员群本身"),
        "区教育局": ("存疑", "与城关镇的截图相同"),
    }
    text = await progress(bot, transport)
    assert "截图：已核验 1，未核验 0，存疑 2，待核验 0" in text
    assert "存疑：东城街道（截图是联络员群本身）、区教育局（与城关镇的截图相同）" in text


async def test_a_screenshot_after_a_text_confirmation_is_its_evidence(pushed, transport, engine, clock):
    await transport.say(WANG, "已转发", room_id=LIAISON_ROOM)
    clock.advance(minutes=3)
    await transport.send_image(WANG, shot("unit_dark.jpg"), room_id=LIAISON_ROOM)
    await pushed.check_evidence()
    with session(engine) as s:
        conf = s.exec(select(Confirmation)).one()
    assert (conf.method, conf.verdict) == ("text", "已核验")


async def test_stored_under_a_generated_name_and_the_backlog_survives_a_restart(
    settings, transport, engine, clock, roster, pushed
):
    await transport.send_image(WANG, Image("../../etc/passwd.png", shot("unit_720_q70.jpg").data), room_id=LIAISON_ROOM)
    await pushed.stop()  # before any check
    with session(engine) as s:
        conf = s.exec(select(Confirmation)).one()
    folder = Path(settings.evidence_dir)
    assert conf.evidence_file.endswith(".jpg") and "/" not in conf.evidence_file and ".." not in conf.evidence_file
    assert evidence_path(folder, conf.evidence_file).read_bytes() == shot("unit_720_q70.jpg").data
    with pytest.raises(ValueError):
        evidence_path(folder, "../x.jpg")
    again = build_bot(settings, transport, engine=engine, clock=clock, send_loop=False)
    await again.start()
    assert await again.check_evidence() == 1
    assert verdicts(engine)["城关镇"][0] == "已核验"
    await again.stop()


async def test_without_ocr_screenshots_are_stored_unchecked(pushed, transport, engine, monkeypatch):
    monkeypatch.setattr(evidence, "load_ocr", lambda: None)
    await transport.send_image(WANG, shot("unit_1080.png"), room_id=LIAISON_ROOM)
    await pushed.check_evidence()
    assert verdicts(engine)["城关镇"] == ("未核验", "未安装文字识别，截图已保存未核验")
    assert "城关镇" not in (await progress(pushed, transport)).splitlines()[-1]  # it still counts as confirmed


async def test_old_screenshots_are_deleted_and_their_verdicts_stay(pushed, transport, engine, clock, settings):
    await transport.send_image(WANG, shot("unit_540_q50.jpg"), room_id=LIAISON_ROOM)
    await pushed.check_evidence()
    with session(engine) as s:
        name = s.exec(select(Confirmation)).one().evidence_file
    path = evidence_path(Path(settings.evidence_dir), name)
    clock.advance(days=89)
    assert await pushed.expire_evidence() == 0 and path.exists()
    clock.advance(days=2)
    assert await pushed.expire_evidence() == 1
    assert not path.exists()
    assert verdicts(engine)["城关镇"] == ("已核验", "截图中有推送标题")


async def test_verdicts_are_in_the_report(pushed, transport, engine, clock):
    import io

    from openpyxl import load_workbook

    await transport.send_image(WANG, shot("unit_1080.png"), room_id=LIAISON_ROOM)
    await transport.send_image(LI, shot("unrelated_landscape.jpg"), room_id=LIAISON_ROOM)
    await pushed.check_evidence()
    transport.sent.clear()
    await transport.say(ADMIN, "报表 日", room_id=OFFICE_ROOM)
    await pushed.send_pending()
    text = transport.sent[0].text
    assert "截图 2 张：已核验 1，存疑 1（见表格“截图核验”）。" in text
    xlsx = next(o.file for o in transport.sent if o.file)
    rows = [[c.value for c in r] for r in load_workbook(io.BytesIO(xlsx.data))["截图核验"].iter_rows(min_row=2)]
    assert rows == [["#1", "城关镇", "已核验", "截图中有推送标题"], ["#1", "东城街道", "存疑", "截图中找不到推送标题"]]


async def test_relaybot_status_shows_open_pushes_with_verdicts_and_the_outbox(pushed, transport, engine, tmp_path):

    from tests.bot_process import relaybot

    await transport.send_image(WANG, shot("unit_1080.png"), room_id=LIAISON_ROOM)
    await pushed.check_evidence()
    result = relaybot("status", db_url=str(engine.url), cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert "进行中的推送：1 条" in result.stdout
    assert "截图：已核验 1，未核验 0，存疑 0，待核验 0" in result.stdout
    assert "发送队列：待发 0，发送中 0，已发" in result.stdout


@pytest.mark.parametrize("required", [False, True])
async def test_text_only_confirmations_count_and_are_reported_as_without_screenshot(
    pushed, transport, engine, settings, required
):
    pushed.settings = settings.model_copy(update={"evidence_required": required})
    await transport.send_image(WANG, shot("unit_1080.png"), room_id=LIAISON_ROOM)
    await transport.say(LI, "已转发", room_id=LIAISON_ROOM)
    await pushed.check_evidence()
    text = await progress(pushed, transport)
    assert "已确认 2/6" in text  # the text-only one counts either way
    assert "截图：已核验 1，未核验 0，存疑 0，待核验 0，无截图 1" in text
    assert ("缺截图（1）：东城街道" in text) is required


async def test_a_check_over_its_time_limit_is_marked_unchecked(pushed, transport, engine, settings, monkeypatch):
    import threading

    release = threading.Event()

    def stuck(*args, **kwargs):
        release.wait(5)  # an OCR run that hangs
        raise RuntimeError("too late")

    pushed.settings = settings.model_copy(update={"evidence_check_seconds": 0.2})
    monkeypatch.setattr(evidence, "check_screenshot", stuck)
    await transport.send_image(WANG, shot("unit_1080.png"), room_id=LIAISON_ROOM)
    assert await pushed.check_evidence() == 1
    release.set()
    assert verdicts(engine)["城关镇"] == ("未核验", "文字识别超时，截图已保存未核验")
