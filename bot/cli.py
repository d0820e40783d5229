"""The `relaybot` command."""

from __future__ import annotations

import asyncio
import logging
import signal
import sys
from pathlib import Path

import typer

from bot.config import Settings, load_settings

app = typer.Typer(help="反诈联络员群助手 (liaison relay bot)", no_args_is_help=True, add_completion=False)
roster_app = typer.Typer(help="联络员名单：导入与查看", no_args_is_help=True)
app.add_typer(roster_app, name="roster")


def _settings() -> Settings:
    try:
        return load_settings()
    except Exception as exc:  # pydantic's message names the setting that is wrong
        typer.echo(f"配置有误（relaybot.toml 或 RELAYBOT_* 环境变量）：\n{exc}", err=True)
        raise typer.Exit(2) from None


def _logging(level: int) -> None:
    logging.basicConfig(level=level, format="%(asctime)s %(levelname)s %(name)s: %(message)s", stream=sys.stderr)
    # APScheduler logs every run of every job at INFO; the ack job runs every few seconds.
    logging.getLogger("apscheduler").setLevel(max(level, logging.WARNING))


@app.command()
def demo() -> None:
    """运行演示：一天的推送、确认、提醒与未转发名单（不需要微信）。"""
    from bot.demo import run_demo

    _logging(logging.WARNING)
    asyncio.run(run_demo(sys.stdout))


@app.command()
def run(console: bool = typer.Option(False, "--console", help="在终端里模拟群聊，不连接微信")) -> None:
    """启动机器人（连接 Wechaty puppet service；或用 --console 在终端试用）。"""
    settings = _settings()
    if console:
        _logging(logging.WARNING)
        asyncio.run(_run_console(settings))
        return
    endpoint, token = settings.endpoint(), settings.token()
    if not endpoint or not token:
        missing = [n for n, v in (("WECHATY_PUPPET_SERVICE_ENDPOINT", endpoint), ("WECHATY_PUPPET_SERVICE_TOKEN", token)) if not v]
        typer.echo(
            "无法连接微信：没有设置 " + " 和 ".join(missing) + "。\n"
            "请设置 Wechaty puppet service 的地址和 token，例如：\n"
            "  export WECHATY_PUPPET_SERVICE_ENDPOINT=127.0.0.1:8788\n"
            "  export WECHATY_PUPPET_SERVICE_TOKEN=你的token\n"
            "（也可写在 relaybot.toml 的 puppet_service_endpoint / puppet_service_token）。\n"
            "只想试用：relaybot run --console",
            err=True,
        )
        raise typer.Exit(2)
    _logging(logging.INFO)
    try:
        asyncio.run(_run_wechaty(settings, endpoint, token))
    except ConnectionError as exc:  # WechatyStartError: unreachable gateway, wrong token, no login
        typer.echo(
            f"无法连接微信网关 {endpoint}：{exc}\n"
            "请检查：网关是否在运行、地址和端口是否正确、token 是否有效。",
            err=True,
        )
        raise typer.Exit(1) from None


async def _run_wechaty(settings: Settings, endpoint: str, token: str) -> None:
    from bot.app import RelayBot
    from bot.transport.wechaty import WechatyTransport
    from scheduler import build_scheduler

    transport = WechatyTransport(endpoint, token, cache_dir=settings.cache_dir)
    bot = RelayBot(settings, transport)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    await bot.start()
    scheduler = build_scheduler(bot)
    scheduler.start()
    logging.getLogger("relaybot").info("running; Ctrl+C to stop")
    await stop.wait()
    scheduler.shutdown(wait=False)
    await bot.stop()


async def _run_console(settings: Settings) -> None:
    from sqlmodel import select

    from bot.app import RelayBot
    from bot.db import create_schema, make_engine, session
    from bot.models import Liaison
    from bot.transport.base import Member, RoomInfo
    from bot.transport.console import ConsoleTransport
    from scheduler import build_scheduler

    liaison_name = settings.liaison_groups[0] if settings.liaison_groups else "联络员群（控制台）"
    office_name = settings.office_group or "反诈办工作群（控制台）"
    admin_id = settings.admin_ids[0] if settings.admin_ids else "console-admin"
    settings = settings.model_copy(
        update={"liaison_groups": [liaison_name], "office_group": office_name,
                "admin_ids": list({*settings.admin_ids, admin_id}), "send_spacing_seconds": 0.0}
    )
    engine = make_engine(settings.database_url)
    create_schema(engine)
    with session(engine) as s:
        people = [
            Member(l.contact_id or f"console-{l.id}", l.wechat_name or l.name, "")
            for l in s.exec(select(Liaison).where(Liaison.active == True))  # noqa: E712
        ]
    admin = Member(admin_id, "反诈办管理员", "")
    stranger = Member("console-stranger", "路人甲", "")
    transport = ConsoleTransport(
        [
            (RoomInfo("console-office@chatroom", office_name), [admin]),
            (RoomInfo("console-liaison@chatroom", liaison_name), [admin, *people, stranger]),
        ]
    )
    if not people:
        typer.echo("提示：名单为空。先导入名单：relaybot roster import examples/roster_example.csv")
    bot = RelayBot(settings, transport, engine=engine)
    await bot.start()
    scheduler = build_scheduler(bot)
    scheduler.start()
    await transport.repl(bot, after_each=bot.send_pending)
    scheduler.shutdown(wait=False)
    await bot.send_pending()
    await bot.stop()


@roster_app.command("import")
def roster_import(file: Path = typer.Argument(..., help=".xlsx 或 .csv，表头：单位,类别,联络员,微信ID,微信昵称,手机,角色")) -> None:
    """导入（或更新）联络员名单。文件有错时什么都不改，并指出第几行哪一列。"""
    from bot.db import create_schema, make_engine, session
    from bot.roster import RosterError, import_roster, read_roster_file

    settings = _settings()
    try:
        rows = read_roster_file(file)
    except RosterError as exc:
        typer.echo(f"导入失败，名单没有改动：{exc}", err=True)
        raise typer.Exit(1) from None
    engine = make_engine(settings.database_url)
    create_schema(engine)
    with session(engine) as s:
        report = import_roster(s, rows)
        s.commit()
    typer.echo(f"导入成功：{len(rows)} 行。")
    for line in report.lines():
        typer.echo("  " + line)


@roster_app.command("show")
def roster_show() -> None:
    """列出单位和联络员，以及谁还没在联络员群里被识别。"""
    from sqlmodel import select

    from bot.db import create_schema, make_engine, session
    from bot.models import Group, GroupKind
    from bot.roster import roster_lines

    settings = _settings()
    engine = make_engine(settings.database_url)
    create_schema(engine)
    with session(engine) as s:
        rooms = list(s.exec(select(Group.room_id).where(Group.kind == GroupKind.LIAISON.value)))
        lines = roster_lines(s, rooms)
    if not lines:
        typer.echo("名单为空。导入：relaybot roster import 名单.xlsx")
        return
    current = None
    waiting = 0
    for line in lines:
        if line.unit != current:
            current = line.unit
            typer.echo(f"{line.unit}（{line.kind}）")
        if line.in_group:
            status = "已识别，在群里"
        elif line.recognised:
            status = "已知微信ID，未在联络员群见到"
            waiting += 1
        else:
            status = "未识别"
            waiting += 1
        typer.echo(f"  {line.role} {line.liaison}  {line.wechat_name or '-'}  {status}")
    units = len({l.unit for l in lines})
    typer.echo(f"共 {units} 个单位、{len(lines)} 名联络员；{waiting} 人尚未在联络员群中识别。")


def main() -> None:
    """Entry point of the `relaybot` script."""
    app()
