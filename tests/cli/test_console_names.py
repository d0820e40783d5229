"""Console names by their start or a part (issue 13: `/room 联络员群`, `/as 周敏` needed the full decorated names)."""

from __future__ import annotations

import io

import pytest

from bot.transport.base import Member, RoomInfo
from bot.transport.console import ConsoleTransport, pick
from tests.bot_process import relaybot
from tests.cli.console_process import import_roster

ADMIN = Member("console-admin", "反诈办管理员", "")
ZHOU = Member("console-4", "周敏（西湖镇）", "")
WANG = Member("wxid_wangfang", "王芳-城关镇", "")
WANGFANG2 = Member("wxid_WangFang2", "王芳芳", "")
ZHAO = Member("console-2", "赵磊", "")
LI_A = Member("console-11", "李强（东城街道）", "")
LI_B = Member("console-12", "李强（区水务局）", "")
OFFICE = RoomInfo("console-office@chatroom", "反诈办工作群（控制台）")
LIAISON = RoomInfo("console-liaison@chatroom", "全区反诈联络员群（控制台）")


def _console() -> tuple[ConsoleTransport, io.StringIO]:
    out = io.StringIO()
    console = ConsoleTransport(
        [(OFFICE, [ADMIN]), (LIAISON, [ADMIN, ZHOU, WANG, WANGFANG2, ZHAO, LI_A, LI_B])], out=out
    )
    return console, out


def _said(out: io.StringIO) -> str:
    text = out.getvalue()
    out.seek(0)
    out.truncate()
    return text


@pytest.mark.parametrize(
    ("typed", "who"),
    [
        ("周敏", ZHOU),  # the start of a decorated name
        ("西湖镇", ZHOU),  # a part of it
        ("周敏(西湖镇)", ZHOU),  # half-width brackets for full-width ones
        ("  周 敏 ", ZHOU),  # spaces
        ("王芳", WANG),  # an exact name would win; here the start: 王芳-城关镇 and 王芳芳 both start with 王芳...
        ("wxid_wangfang2", WANGFANG2),  # an id, in another case
        ("ＷＸＩＤ_ＷＡＮＧＦＡＮＧ2", WANGFANG2),  # full-width letters
        ("赵磊", ZHAO),
        ("console-12", LI_B),
    ],
)
async def test_as_picks_the_one_person_the_typed_text_names(typed, who):
    console, out = _console()
    assert await console.handle_line(f"/as {typed}")
    if typed == "王芳":  # two names start with 王芳: the list, and the speaker stays
        said = _said(out)
        assert "“王芳”对得上 2 个人：王芳-城关镇（wxid_wangfang）、王芳芳（wxid_WangFang2）" in said
        assert console.speaker == ADMIN
        return
    assert _said(out) == ""
    assert console.speaker == who


async def test_an_exact_name_wins_over_names_that_start_with_it():
    console, out = _console()
    await console.handle_line("/as 王芳芳")
    assert console.speaker == WANGFANG2 and _said(out) == ""


async def test_an_ambiguous_name_lists_the_candidates_and_changes_nothing():
    console, out = _console()
    await console.handle_line("/as 李强")
    said = _said(out)
    assert "“李强”对得上 2 个人：李强（东城街道）（console-11）、李强（区水务局）（console-12）" in said
    assert "请多写几个字，或写 ID" in said
    assert console.speaker == ADMIN


async def test_an_unknown_name_lists_who_there_is():
    console, out = _console()
    await console.handle_line("/as 张三")
    said = _said(out)
    assert said.startswith("没有找到“张三”。可选：反诈办管理员、周敏（西湖镇）、王芳-城关镇")
    assert console.speaker == ADMIN
    await console.handle_line("/as ")
    assert "请在 /as 后面写名字" in _said(out)


@pytest.mark.parametrize("typed", ["联络员群", "全区反诈联络员群", "联络员 群", "console-liaison"])
async def test_room_picks_the_room_by_the_start_or_a_part_of_its_name(typed):
    console, out = _console()
    assert await console.handle_line(f"/room {typed}")
    assert console.room_id == LIAISON.room_id and _said(out) == ""
    assert console.prompt() == "[全区反诈联络员群（控制台）] 反诈办管理员> "


async def test_room_ambiguous_or_unknown_says_so_in_chinese_and_stays():
    console, out = _console()
    await console.handle_line("/room 群")
    said = _said(out)
    assert "“群”对得上 2 个群：反诈办工作群（控制台）、全区反诈联络员群（控制台）。请多写几个字。" in said
    await console.handle_line("/room 财务群")
    assert "没有找到群“财务群”。可选：反诈办工作群（控制台）、全区反诈联络员群（控制台）。" in _said(out)
    await console.handle_line("/room")
    assert "请在 /room 后面写群名" in _said(out)
    assert console.room_id == OFFICE.room_id


def test_pick_tries_exact_then_start_then_anywhere():
    options = [("a", ("城关镇",)), ("b", ("城关镇派出所",)), ("c", ("老城关",))]
    assert pick("城关镇", options) == ["a"]
    assert pick("城关", options) == ["a", "b"]
    assert pick("派出所", options) == ["b"]
    assert pick("", options) == [] and pick("！", options) == []


def test_the_console_finds_liaisons_by_their_plain_names(db_url, tmp_path):
    """As a newcomer types them, against the real roster's decorated WeChat names."""
    import_roster(db_url, tmp_path)
    script = "推送 刷单\n/room 联络员群\n/as 周敏\n已转发\n/as 王芳\n已转发\n/as 反诈办\n/room 反诈办\n进度\n/quit\n"
    result = relaybot("run", "--console", db_url=db_url, cwd=tmp_path, stdin=script)
    assert result.returncode == 0, result.stderr
    assert "没有找到" not in result.stdout and "对得上" not in result.stdout
    assert "已确认 2/6" in result.stdout
    assert "[联络员群（控制台）] 周敏" in result.stdout  # the prompt, as 周敏
