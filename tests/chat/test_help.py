"""帮助 is generated from the command registry, so it lists exactly the commands the parser and the office know."""

from __future__ import annotations

from bot.chat.dispatch import CommandRegistry, usage_key
from bot.chat.parsing import COMMANDS as PARSED
from bot.chat.parsing import parse_command
from bot.content import load_library, load_texts
from handlers.office import COMMANDS as REGISTERED
from tests.conftest import ADMIN, LIAISON_ROOM, OFFICE_ROOM, WANG

TEXTS = load_texts()


def office_help() -> str:
    return REGISTERED.help_text(
        TEXTS,
        head=TEXTS.t("help.office_head"),
        foot=TEXTS.t("help.office_foot", types="、".join(load_library().case_types())),
    )


def test_every_command_the_parser_knows_is_registered_and_in_the_help():
    text = office_help()
    for name in PARSED:
        assert REGISTERED.get(name) is not None, name
        assert name in text, name


def test_every_registered_command_is_recognised_by_the_parser_and_shown_by_its_own_usage():
    assert set(REGISTERED.names()) == set(PARSED)
    for spec in REGISTERED.specs:
        usage = TEXTS.t(usage_key(spec.usage))
        for name in spec.names:
            for typed in (name, f"{name} #3", f"@反诈助手 {name} 区卫健局 #3 电话确认"):
                cmd = parse_command(typed)
                assert cmd is not None and cmd.name == name, typed
            assert name in usage, (name, usage)


def test_the_help_lists_the_usages_in_registration_order_between_head_and_foot():
    lines = office_help().splitlines()
    assert lines[0] == "反诈办指令："
    assert lines[-1].startswith("可推送类型：") and "刷单返利" in lines[-1]
    body = "\n".join(TEXTS.t(usage_key(spec.usage)) for spec in REGISTERED.specs)
    assert "\n".join(lines[1:-1]) == body
    for expected in (
        "推送 候选N",
        "警情 [周期]",
        "补登 单位 #编号 理由",
        "撤销 单位 #编号 [理由]",
        "免转 单位 #编号 理由",
        "设为联络员群",
        "取消办公群",
    ):
        assert expected in body, expected
    firsts = [TEXTS.t(usage_key(spec.usage)).split()[0] for spec in REGISTERED.specs]
    assert firsts[:8] == ["推送", "进度", "提醒", "截止", "撤回", "补登", "撤销", "免转"]


def test_a_registry_refuses_a_name_twice_and_keeps_the_order():
    registry = CommandRegistry()
    registry.add(("甲",), None, usage="help")

    @registry.command("乙", "丙", usage="help")
    def handler(msg, ctx, cmd, quoted):
        return None

    assert registry.names() == ("甲", "乙", "丙") and registry.get("丙").handler is handler
    try:
        registry.add(("乙",), None, usage="help")
    except ValueError:
        pass
    else:
        raise AssertionError("a name registered twice was accepted")


async def test_an_admin_gets_the_generated_help_and_a_liaison_the_liaison_help(bot, transport):
    await transport.say(ADMIN, "帮助", room_id=OFFICE_ROOM)
    await transport.say(WANG, "帮助", room_id=LIAISON_ROOM)
    await bot.send_pending()
    assert [(o.chat_id, o.text) for o in transport.sent] == [
        (OFFICE_ROOM, office_help()),
        (LIAISON_ROOM, TEXTS.t("help.liaison")),
    ]
