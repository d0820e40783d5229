"""The `relaybot` command."""

from __future__ import annotations

import asyncio
import logging
import signal
import sys
from pathlib import Path
from typing import Any

import typer

from bot.cli.city_cmd import city_app, district_app
from bot.cli.zh import ZhTyper
from bot.clock import clock_from
from bot.config import Settings, load_settings, settings_error_text

# ZhTyper: typer's own words (help, usage, errors) in Chinese, -h as well as --help (issue 13, bot/cli/zh.py).
app = ZhTyper(
    name="relaybot",  # the usage lines' name wherever the app runs (typer's CliRunner too)
    help="反诈联络员群助手：推送反诈预警到联络员群，并统计各单位是否转发。",
    no_args_is_help=True,
    add_completion=False,
)
roster_app = ZhTyper(help="联络员名单：导入与查看", no_args_is_help=True)
app.add_typer(roster_app, name="roster")
stats_app = ZhTyper(help="电诈警情数据：导入与通报", no_args_is_help=True)
app.add_typer(stats_app, name="stats")
db_app = ZhTyper(help="数据库：升级与备份", no_args_is_help=True)
app.add_typer(db_app, name="db")
app.add_typer(district_app, name="district")
app.add_typer(city_app, name="city")

_WARNED: list[str] = []  # configuration warnings already printed by this process


def _settings(*, unknown_keys_ok: bool = False) -> Settings:
    """The settings, or exit 2 with what is wrong in Chinese (file or variable, key, value; never a secret's).

    Keys in relaybot.toml that are not settings are refused, except for `doctor` (unknown_keys_ok), which lists
    them among its findings. RELAYBOT_* variables that are not settings are warned about once."""
    from bot.config import config_warnings, load_settings_allowing_unknown

    try:
        settings = load_settings_allowing_unknown() if unknown_keys_ok else load_settings()
    except Exception as exc:
        typer.echo(settings_error_text(exc), err=True)
        raise typer.Exit(2) from None
    for line in [] if unknown_keys_ok else config_warnings():  # (doctor lists them among its findings)
        if line not in _WARNED:
            _WARNED.append(line)
            typer.echo(line, err=True)
    return settings


def _logging(level: int, settings: Settings | None = None) -> None:
    from bot.logs import setup_logging

    # The format comes from the settings (RELAYBOT_LOG_FORMAT); the demo needs no settings and keeps text.
    setup_logging(level, settings.log_format if settings is not None else _log_format())
    # APScheduler logs every run at INFO and a poll skipped while the previous one still runs at WARNING;
    # both are normal for pollers. Errors in jobs still show.
    logging.getLogger("apscheduler").setLevel(max(level, logging.ERROR))


def _log_format() -> str:
    try:
        return load_settings().log_format
    except Exception:  # a broken setting is reported by the command that needs it
        return "text"


@app.command()
def web(
    host: str = typer.Option("", "--host", help="监听地址（默认用设置 web_host，127.0.0.1 只许本机访问）"),
    port: int = typer.Option(0, "--port", help="端口（默认用设置 web_port，8080）"),
    login_link: bool = typer.Option(False, "--login-link", help="先在终端打印一个一次性登录链接（首次设置时用）"),
    who: str = typer.Option("", "--as", help="一次性登录链接的身份：管理员或查看人员的微信ID（默认第一个管理员）"),
) -> None:
    """启动网页控制台：推送进度、单位和截图，和机器人用同一个数据库。"""
    from bot.cli import web_cmd

    settings = _settings()
    _logging(logging.WARNING, settings)
    engine = _open_db(settings)
    clock = clock_from(settings.clock_offset_seconds, settings.clock_speed)
    host = host or settings.web_host
    port = port or settings.web_port
    if login_link:
        typer.echo(web_cmd.login_link(settings, engine, clock, who=who, host=host, port=port))
    web_cmd.serve(settings, engine, clock, host=host, port=port)


@app.command()
def demo() -> None:
    """运行演示：一天的推送、确认、提醒与未转发名单（不需要微信）。"""
    from bot.cli.demo import run_demo

    _logging(logging.WARNING)
    asyncio.run(run_demo(sys.stdout))


@app.command()
def run(
    console: bool = typer.Option(False, "--console", help="在终端里模拟群聊，不连接微信"),
    clock: str = typer.Option(
        "", "--clock", help='试运行定时任务：让机器人的时钟从这个时间开始，如 "2026-11-30 09:59"'
    ),
    speed: float = typer.Option(1.0, "--speed", help="试运行定时任务：时钟走快几倍，如 60（1 秒 = 1 分钟）"),
    real_database: bool = typer.Option(
        False,
        "--real-database",
        help="试运行（--console、--clock、--speed）也写入真实数据库；默认用临时副本，退出后删除",
    ),
) -> None:
    """启动机器人（连接 Wechaty puppet service；或用 --console 在终端试用）。"""
    ctrl_c = None
    if console:
        from bot.cli.console_session import CtrlC

        ctrl_c = CtrlC()
        ctrl_c.install()  # the one owner of Ctrl-C from here to the end (issue 13)
    settings = _settings()
    clock_start = None  # where a console's trial clock stands until the first message (issue 13)
    if clock or speed != 1.0:
        settings = settings.model_copy(update=_moved_clock(settings, clock, speed))
        clock_start = _moved_now(settings)
    if not (console or clock or speed != 1.0):
        _start(settings, console)
        return
    try:
        if real_database:
            from bot.cli.database import shown_url
            from bot.content import load_texts

            typer.echo(load_texts().t("trial.real_database", url=shown_url(settings.database_url)), err=True)
            _start(settings, console, clock_start, ctrl_c)
        else:
            from bot.cli.trial import trial_database

            with trial_database(settings) as trial:
                _start(trial, console, clock_start, ctrl_c)
    except KeyboardInterrupt:  # before the event loop runs (the trial copy being made)
        if not console:
            raise
        from bot.content import load_texts

        typer.echo(load_texts().t("console.interrupted"))


def _start(settings: Settings, console: bool, clock_start=None, ctrl_c=None) -> None:
    """The body of `run`, on the database `settings` name."""
    if console:
        _logging(logging.WARNING, settings)
        try:
            ctrl_c.entering_loop()
            asyncio.run(_run_console(settings, clock_start, ctrl_c))
        except KeyboardInterrupt:  # a second Ctrl-C while the console was stopping
            from bot.content import load_texts

            typer.echo(load_texts().t("console.forced"), err=True)
        return
    endpoint, token = settings.endpoint(), settings.token()
    if not endpoint or not token:
        missing = [
            n
            for n, v in (("WECHATY_PUPPET_SERVICE_ENDPOINT", endpoint), ("WECHATY_PUPPET_SERVICE_TOKEN", token))
            if not v
        ]
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
    _logging(logging.INFO, settings)
    try:
        asyncio.run(_run_wechaty(settings, endpoint, token))
    except ConnectionError as exc:  # WechatyStartError: unreachable gateway, wrong token, no login
        typer.echo(
            f"无法连接微信网关 {endpoint}：{exc}\n请检查：网关是否在运行、地址和端口是否正确、token 是否有效。",
            err=True,
        )
        raise typer.Exit(1) from None


def _open_db(settings: Settings):
    """The database engine at the newest schema (migrating if needed), or a plain-words exit."""
    engine = _engine_or_exit(settings.database_url)
    if _city_without_district(settings, engine):
        engine.dispose()
        typer.echo(
            '这个数据库是全市多区的：请设置本机器人是哪个区（district = "区名" 或 RELAYBOT_DISTRICT），'
            "relaybot district list 看有哪些区。",
            err=True,
        )
        raise typer.Exit(2)
    failure = "打不开数据库：{error}\n请检查 database_url（RELAYBOT_DATABASE_URL）；relaybot doctor 可以帮忙。"
    if settings.district:  # a district's tables belong to the city's login, which upgrades them
        failure = (
            "本区的数据库结构要升级，但区的账号不能改表：{error}\n请在市里的服务器上运行 relaybot db upgrade"
            "（用市里的配置，不设 district），再启动本区机器人。"
        )
    _upgrade_or_exit(engine, failure)
    return engine


def _engine_or_exit(url: str):
    """The CLI's engine for `url` (connected once); a wrong URL, driver or connection exits 2 in plain words."""
    from bot.cli.database import DatabaseUrlError, cli_engine

    try:
        return cli_engine(url)
    except DatabaseUrlError as exc:
        typer.echo(str(exc), err=True)
        raise typer.Exit(2) from None


def _upgrade_or_exit(engine, failure: str):
    """upgrade_schema, or exit 1 with its reason: SchemaTooNew's own words, else `failure` with {error}."""
    from bot.storage.db import SchemaTooNew, describe_error, upgrade_schema

    try:
        return upgrade_schema(engine)
    except SchemaTooNew as exc:
        typer.echo(str(exc), err=True)
    except Exception as exc:
        typer.echo(failure.format(error=describe_error(exc)), err=True)
    engine.dispose()
    raise typer.Exit(1)


def _notifier(settings: Settings):
    """The webhook robot from the settings, or None; a wrong setting stops the start with its reason."""
    from bot.adapters.webhooks import make_notifier

    try:
        return make_notifier(settings.notify_kind, settings.notify_url, settings.notify_secret)
    except ValueError as exc:
        typer.echo(f"配置有误：{exc}", err=True)
        raise typer.Exit(2) from None


def _moved_clock(settings: Settings, start: str, speed: float) -> dict:
    from datetime import datetime

    from bot.clock import real_clock

    offset = settings.clock_offset_seconds
    if start:
        try:
            moment = datetime.fromisoformat(start.strip().replace("T", " "))
        except ValueError:
            typer.echo(f"--clock 的时间看不懂：{start}（例：2026-11-30 09:59）", err=True)
            raise typer.Exit(2) from None
        if moment.tzinfo is None:
            moment = moment.replace(tzinfo=settings.tz)
        offset = (moment - real_clock()).total_seconds()
    if speed <= 0:
        typer.echo("--speed 必须大于 0", err=True)
        raise typer.Exit(2)
    # A fast clock needs the schedule to be looked at often in real seconds.
    check = min(settings.schedule_check_seconds, max(0.2, 30 / speed))
    return {"clock_offset_seconds": offset, "clock_speed": speed, "schedule_check_seconds": check}


def _moved_now(settings: Settings):
    """The moment a moved clock shows now (the --clock time just parsed, or now plus the configured offset)."""
    from datetime import timedelta

    from bot.clock import real_clock

    return real_clock() + timedelta(seconds=settings.clock_offset_seconds)


async def _serve(settings: Settings, transport, engine, clock, until, drain=None) -> None:
    """What `run` and `run --console` share: build the bot, start it and its scheduler, run `until(bot)`, stop:
    the scheduler's jobs in flight finish first, then `drain(bot)` (if given), then the bot stops."""
    from bot.cli.serving import JobsInFlight, stop_scheduler
    from bot.runtime.app import build_bot
    from scheduler import build_scheduler

    lock = _single_instance(settings)  # before anything connects to the gateway
    try:
        _check_identity_or_exit(settings, engine)
        bot = build_bot(settings, transport, engine=engine, clock=clock, notifier=_notifier(settings))
        await bot.start()
        jobs = JobsInFlight()
        scheduler = build_scheduler([jobs.track(p) for p in bot.pollers()], timezone_name=settings.timezone)
        scheduler.start()
        try:
            await until(bot)
        finally:
            await stop_scheduler(scheduler, jobs)  # not cancelled mid-unit-of-work (issue 13)
            try:
                if drain is not None:
                    await drain(bot)
            finally:
                await bot.stop()
                _record_clean_run(settings, engine)
    finally:
        lock.release()
        _HELD_LOCKS.pop(settings.database_url, None)


_HELD_LOCKS: dict[str, Any] = {}  # database URL -> the InstanceLock this process holds


def _single_instance(settings: Settings):
    """The single-instance lock of the database, or exit 2 naming the bot that holds it (issue 12 item 11).

    Exit 2, like a configuration error: systemd does not restart it (RestartPreventExitStatus=2). Another bot on
    the same database is a person's mistake to resolve; retrying every 15 s would fill the journal and silently
    take over the moment the other one stops."""
    from bot.content import load_texts
    from bot.runtime.instance import AlreadyRunning, acquire
    from bot.storage.db import describe_error

    held = _HELD_LOCKS.get(settings.database_url)
    if held is not None and held.held:
        return held
    texts = load_texts()
    try:
        lock = _HELD_LOCKS[settings.database_url] = acquire(settings.database_url)
        return lock
    except AlreadyRunning as exc:
        typer.echo(texts.t("instance.running", holder=exc.holder or texts.t("instance.unknown_holder")), err=True)
        raise typer.Exit(2) from None
    except Exception as exc:  # the lock file's folder is read-only, the server refused the connection
        typer.echo(texts.t("instance.lock_failed", error=describe_error(exc)), err=True)
        raise typer.Exit(1) from None


# ---- the database the bot last ran on (issue 12 item 9) ------------------------------------------


def _marker_path(settings: Settings) -> Path:
    from bot.storage.guard import marker_path

    return marker_path(settings.database_url, Path(settings.cache_dir).parent)


def _check_identity_or_exit(settings: Settings, engine) -> None:
    """Refuse to start (exit 2) on a database that is not the one the marker remembers: missing, empty, made
    anew by `db upgrade`, or another one. Without a marker (the first start), the database gets an id and the
    marker is written."""
    from bot.storage.db import session
    from bot.storage.guard import database_id, identity_problem, read_marker

    path = _marker_path(settings)
    marker = read_marker(path)
    with session(engine) as s:
        problem = identity_problem(marker, database_id(s))
    if problem and marker is not None:
        engine.dispose()
        typer.echo(_identity_refusal(settings, marker, problem, path), err=True)
        raise typer.Exit(2)
    _record_clean_run(settings, engine)


def _identity_refusal(settings: Settings, marker, problem: str, path: Path) -> str:
    from bot.storage.guard import sqlite_path

    file = sqlite_path(settings.database_url)
    what = (
        "现在的数据库是空的或新建的（里面没有数据库编号）"
        if problem == "missing"
        else "现在的数据库是另一个（数据库编号与上次不同）"
    )
    restore = (
        f"停止机器人，把 relaybot db backup 做的备份文件复制为 {file}，再启动"
        if file is not None
        else "用 pg_restore 恢复 relaybot db backup 做的备份，再启动"
    )
    return (
        f"数据库不是机器人上次运行时用的那个：{what}。\n"
        f"上次正常运行时（{marker.written_at or '时间不详'}）有 {marker.units} 个单位、{marker.liaisons} 名联络员、"
        f"{marker.confirmations} 条确认，推送到 #{marker.last_push}。\n"
        "在这样的数据库上运行，联络员会被告知“不在名单里”，以前的记录也看不到，所以机器人不启动。请二选一：\n"
        f"  1. 从备份恢复：{restore}；\n"
        "  2. 确认就用现在这个数据库（以前的记录不要了）：relaybot db accept-new\n"
        f"（记号文件：{path}）"
    )


def _record_clean_run(settings: Settings, engine) -> None:
    """Give the database an id if it has none and write the marker beside it (id and counts)."""
    from datetime import UTC, datetime

    from bot.storage.db import session
    from bot.storage.guard import current_marker, ensure_identity, write_marker

    now = datetime.now(UTC)
    try:
        with session(engine) as s:
            ident = ensure_identity(s, now=now)
            s.commit()
            write_marker(_marker_path(settings), current_marker(s, ident, now=now))
    except Exception as exc:  # a full disk: the marker from the last good run stays
        logging.getLogger("relaybot").error("could not record the database's marker: %s", exc)


async def _run_wechaty(settings: Settings, endpoint: str, token: str) -> None:
    _single_instance(settings)  # first: a second bot exits before the slow imports and the database upgrade
    from bot.transport.wechaty import WechatyTransport

    transport = WechatyTransport(endpoint, token, cache_dir=settings.cache_dir)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)

    async def until_stopped(bot) -> None:
        logging.getLogger("relaybot").info("running; Ctrl+C to stop")
        await stop.wait()

    await _serve(
        settings,
        transport,
        _open_db(settings),
        clock_from(settings.clock_offset_seconds, settings.clock_speed),
        until_stopped,
    )


async def _run_console(settings: Settings, clock_start=None, ctrl_c=None) -> None:
    """`run --console`: the bot on a terminal chat (bot/cli/console_session.py); a trial clock stands still at
    its start until the first message is typed."""
    from bot.cli.console_session import run_console

    await run_console(settings, clock_start, serve=_serve, open_db=_open_db, ctrl_c=ctrl_c)


@roster_app.command("import")
def roster_import(
    file: Path = typer.Argument(..., help=".xlsx 或 .csv，表头：单位,类别,联络员,微信ID,微信昵称,手机,角色"),
    sheet: str | None = typer.Option(None, "--sheet", help="读取哪个工作表（.xlsx；默认第一个有名单的工作表）"),
    dry_run: bool = typer.Option(False, "--dry-run", help="只显示会有哪些变化，什么都不写入"),
    yes: bool = typer.Option(False, "--yes", help="确认停用新名单里没有的单位"),
) -> None:
    """导入（或更新）联络员名单。文件有错时什么都不改，并列出每一处错误（第几行哪一列）。"""
    from bot.cli.roster_cmd import run_import

    settings = _settings()
    code = run_import(file, sheet=sheet, dry_run=dry_run, yes=yes, open_engine=lambda: _open_db(settings))
    if code:
        raise typer.Exit(code)


@roster_app.command("show")
def roster_show() -> None:
    """列出单位和联络员，以及谁还没在联络员群里被识别。"""
    from bot.domain.roster import kind_and_tags, roster_lines
    from bot.storage.db import session

    settings = _settings()
    engine = _open_db(settings)
    with session(engine) as s:
        lines = roster_lines(s)
    if not lines:
        typer.echo("名单为空。导入：relaybot roster import 名单.xlsx")
        return
    current = None
    waiting = 0
    for line in lines:
        if line.unit != current:
            current = line.unit
            typer.echo(f"{line.unit}（{kind_and_tags(line.kind, line.tags)}）")
        if line.in_group:
            status = "已识别，在群里"
        elif line.recognised:
            status = "已知微信ID，未在联络员群见到"
            waiting += 1
        else:
            status = "未识别"
            waiting += 1
        typer.echo(f"  {line.role} {line.liaison}  {line.wechat_name or '-'}  {status}")
    units = len({line.unit for line in lines})
    typer.echo(f"共 {units} 个单位、{len(lines)} 名联络员；{waiting} 人尚未在联络员群中识别。")


@app.command()
def report(
    day: bool = typer.Option(False, "--day", help="日报"),
    week: bool = typer.Option(False, "--week", help="周通报（周一至周日）"),
    month: bool = typer.Option(False, "--month", help="月通报"),
    quarter: bool = typer.Option(False, "--quarter", help="季点评（季度按 1—3、4—6、7—9、10—12 月，与上季度比较）"),
    date_text: str = typer.Option(
        "", "--date", help="报表所在的日期，默认今天；写法与群里相同，如 2026-11-26、11月26日、昨天"
    ),
    out: Path = typer.Option(..., "--out", help="输出的 .xlsx 文件；同名 .png 图表写在旁边"),
) -> None:
    """生成日报/周通报/月通报/季点评：.xlsx 表格和 .png 图表。"""
    from bot.cli.report import ReportDateError, report_day, write_report
    from bot.content import load_texts

    texts = load_texts()
    kinds = [k for k, on in (("day", day), ("week", week), ("month", month), ("quarter", quarter)) if on]
    if len(kinds) != 1:
        typer.echo(texts.t("report_cli.choose_kind"), err=True)
        raise typer.Exit(2)
    settings = _settings()
    now = _moved_now(settings)  # the bot's clock: a deployment on a moved clock reports by it
    try:
        when = report_day(date_text, kind=kinds[0], today=now.astimezone(settings.tz).date(), texts=texts)
    except ReportDateError as exc:
        typer.echo(str(exc), err=True)
        raise typer.Exit(2) from None
    engine = _open_db(settings)
    typer.echo(write_report(engine, kind=kinds[0], day=when, now=now, settings=settings, out=out, texts=texts))


@app.command()
def verify(
    unit: str = typer.Argument(..., help="单位名称（写全名或能唯一认出的几个字），如 海湖镇"),
    day: str = typer.Argument(..., help="受害人反映的日期，如 2026-11-20、11月20日、11.20；不写年份指最近的这一天"),
    out: Path | None = typer.Option(None, "--out", help="输出的 .xlsx 文件（默认 回访核查_单位_日期.xlsx）"),
) -> None:
    """回访核查：该单位在这一天及之前三个月收到的每条推送、是否及何时转发、方式和截图核验，写成 .xlsx。"""
    from bot.cli.verify_cmd import VerifyCliError, write_verify
    from bot.clock import real_clock
    from bot.content import load_texts

    settings = _settings()
    engine = _open_db(settings)
    try:
        text = write_verify(
            engine, unit_name=unit, day_text=day, now=real_clock(), settings=settings, texts=load_texts(), out=out
        )
    except VerifyCliError as exc:
        typer.echo(str(exc), err=True)
        raise typer.Exit(1) from None
    typer.echo(text)


@app.command()
def push(
    case_type: str = typer.Argument(..., help="案件类型或简称，如 刷单、公检法"),
    yes: bool = typer.Option(False, "--yes", "-y", help="今天已推送过同一类型时也再推一次（相当于聊天里的“确认”）"),
    at: str = typer.Option("", "--at", help='到这个时间再推送（定时推送），写法与群里相同，如 "明天9:00"、"周一 8:30"'),
    to: str | None = typer.Option(
        None,
        "--to",
        help='只推给这些单位（精准滴灌）：名单“标签”列的标签、类别或单位名，如 "学校,医院"；"全部" 推给所有单位',
    ),
) -> None:
    """把预警库里该类型的预警排进发送队列；正在运行的机器人会按节奏发到各联络员群（可用于 cron 定时推送）。
    同一类型今天已推送过时不再推送，说明是哪一条；确要再推一次，加 --yes。加 --at 则到时由机器人推送；
    加 --to 只推给某些单位，只统计这些单位。"""
    from bot.clock import real_clock
    from bot.content import load_library, load_texts
    from bot.operations.pushing import library_alert, push_alert
    from bot.storage.db import session

    settings = _settings()
    library, texts = load_library(), load_texts()
    item = library.find(case_type)
    if item is None:
        typer.echo(texts.t("push.unknown_type", name=case_type, types="、".join(library.case_types())), err=True)
        raise typer.Exit(1)
    if to is not None:
        _check_target(settings, texts, to)
    to = to or ""
    if at:
        _push_at(settings, texts, item, at, again=yes, to=to)
        return
    engine = _open_db(settings)
    now = real_clock()
    with session(engine) as s:
        alert = library_alert(item, now=now)
        outcome = push_alert(
            s,
            alert,
            now=now,
            actor_id="cli",
            actor_name="relaybot push",
            settings=settings,
            texts=texts,
            again=yes,
            again_command=texts.t("push_repeat.cli", what=case_type),
            target=to,
        )
        if outcome.push is None:
            typer.echo(outcome.message, err=True)
            raise typer.Exit(1)
        s.commit()
    typer.echo(outcome.message + "（已排入发送队列，由运行中的机器人发送）")


def _check_target(settings: Settings, texts, to: str) -> None:
    """`--to` that names no tag, 类别 or unit: said in Chinese, nothing stored (exit 2)."""
    from bot.domain import targets
    from bot.operations.pushing import unknown_target_text
    from bot.storage.db import session

    if not to.strip():
        typer.echo(texts.t("targets.need_who_cli"), err=True)
        raise typer.Exit(2)
    with session(_open_db(settings)) as s:
        try:
            targets.resolve(s, to)
        except targets.TargetError as exc:
            typer.echo(unknown_target_text(s, texts, exc), err=True)
            raise typer.Exit(2) from None


def _push_at(settings: Settings, texts, item, at: str, *, again: bool, to: str = "") -> None:
    """`relaybot push 刷单 --at 明天9:00`: a scheduled push, by the bot's clock (a moved one too), told to the
    office group when it goes out."""
    from bot.chat import compose
    from bot.chat.parsing import DeadlineError, DeadlinePassed, TimeMissing, parse_send_time
    from bot.clock import show
    from bot.operations import scheduled
    from bot.storage.db import session
    from bot.storage.models import Alert

    now = clock_from(settings.clock_offset_seconds, settings.clock_speed)()
    try:
        send_at = parse_send_time(at, now=now, tz=settings.tz)
    except TimeMissing:
        typer.echo(texts.t("scheduled.need_time"), err=True)
        raise typer.Exit(2) from None
    except DeadlinePassed as passed:
        typer.echo(texts.t("scheduled.passed", when=show(passed.at, settings.tz), what=item.case_type), err=True)
        raise typer.Exit(2) from None
    except DeadlineError:
        typer.echo(texts.t("scheduled.bad_time", text=at), err=True)
        raise typer.Exit(2) from None
    if scheduled.too_far(send_at, now=now):
        days = scheduled.MAX_AHEAD.days
        typer.echo(texts.t("scheduled.too_far", when=show(send_at, settings.tz), days=days), err=True)
        raise typer.Exit(2)
    engine = _open_db(settings)
    with session(engine) as s:
        alert = Alert(case_type=item.case_type, title=item.title, text=item.body, created_at=now)
        done = scheduled.schedule_push(
            s,
            alert,
            send_at=send_at,
            now=now,
            actor_id="cli",
            actor_name="relaybot push",
            again=again,
            chat_kind="",
            chat_id="",
            settings=settings,
            texts=texts,
            target=to,
        )
        s.commit()
    row = done.row
    title = compose.push_title(alert)
    typer.echo(texts.t("scheduled.cli_saved", when=show(row.send_at, settings.tz), title=title, n=row.id))


@app.command()
def scheduled(
    cancel: int = typer.Option(0, "--cancel", help="取消这一条定时推送（编号见列表）"),
) -> None:
    """待推送的定时推送（聊天里“推送 刷单 明天9:00”或 relaybot push --at 定的）；--cancel 编号 取消一条。"""
    from bot.content import load_texts
    from bot.operations import scheduled as scheduled_pushes
    from bot.storage.db import session

    settings = _settings()
    texts = load_texts()
    engine = _open_db(settings)
    now = clock_from(settings.clock_offset_seconds, settings.clock_speed)()
    with session(engine) as s:
        if not cancel:
            typer.echo(scheduled_pushes.list_text(s, texts=texts, settings=settings, foot="scheduled.cli_list_foot"))
            return
        ok, answer = scheduled_pushes.cancel(
            s, cancel, now=now, actor_id="cli", actor_name="relaybot scheduled", texts=texts, settings=settings
        )
        s.commit()
    typer.echo(answer, err=not ok)
    if not ok:
        raise typer.Exit(1)


@app.command()
def status() -> None:
    """运行状况：进行中的推送（含截图核验）、发送队列、最近一次成功发送和收到消息、自检结果。"""

    from sqlalchemy import func
    from sqlmodel import col, select

    from bot.chat.compose import progress_text
    from bot.clock import real_clock, show
    from bot.content import load_texts
    from bot.domain.relay import progress
    from bot.runtime.health import health_snapshot
    from bot.storage.db import session
    from bot.storage.models import Group, Outbox, Push, PushState

    settings = _settings()
    tz = settings.tz
    engine = _open_db(settings)
    texts, now = load_texts(), real_clock()
    with session(engine) as s:
        pushes = s.exec(select(Push).where(Push.state == PushState.OPEN.value).order_by(col(Push.id))).all()
        typer.echo(f"进行中的推送：{len(pushes)} 条")
        for push in pushes:
            typer.echo(progress_text(texts, progress(s, push), now=now, tz=tz))
            typer.echo("")
        states = dict(s.exec(select(Outbox.state, func.count()).group_by(Outbox.state)).all())
        typer.echo(
            f"发送队列：待发 {states.get('pending', 0)}，发送中 {states.get('sending', 0)}，"
            f"已发 {states.get('sent', 0)}，失败 {states.get('failed', 0)}"
        )
        health = health_snapshot(s)
        last_send, last_receive = health["last_send_ok_at"], health["last_receive_at"]
        typer.echo("最近一次成功发送：" + (show(last_send, tz) if last_send else "还没有"))
        typer.echo("最近一次收到消息：" + (show(last_receive, tz) if last_receive else "还没有"))
        check = health["self_check"]
        if check is not None:
            result = "发送成功" if check["send_ok"] else "发送失败"
            if check["echo_ok"] is not None:
                result += "，已收到回显" if check["echo_ok"] else "，没有收到回显"
            typer.echo(
                f"最近一次自检：{show(check['at'], tz)} {result}"
                + (f"（{check['detail']}）" if check["detail"] else "")
            )
        # Room ids, for liaison_groups/office_group in relaybot.toml (ids, not names: issue 12 item 6).
        kind_label = {"liaison": "联络员群", "office": "反诈办工作群", "none": "未服务"}
        for group in s.exec(select(Group).order_by(col(Group.kind), col(Group.id))):
            typer.echo(f"群：{group.room_id}「{group.name}」{kind_label.get(group.kind, group.kind)}")
        for key, label in (
            ("link_down_since", "微信连接断开"),
            ("send_down_since", "发不出消息"),
            ("receive_down_since", "收不到消息"),
        ):
            if health[key] is not None:
                typer.echo(f"⚠ {label}，自 {show(health[key], tz)} 起")


@app.command()
def doctor(
    timeout: float = typer.Option(5.0, "--timeout", help="连接微信网关最多等几秒"),
    fix_console_traces: bool = typer.Option(
        False, "--fix-console-traces", help="先清除控制台试运行留在数据库里的痕迹（console- 身份、群、消息），再体检"
    ),
) -> None:
    """体检：配置、数据库、微信网关和 token、机器人最近的运行状况；有严重问题时退出码为 1。"""
    from bot.cli.doctor import exit_code, run_checks
    from bot.clock import real_clock

    settings = _settings(unknown_keys_ok=True)  # doctor lists them (✘) with everything else
    if fix_console_traces:
        _fix_console_traces(settings)
    findings = run_checks(settings, now=real_clock(), gateway_timeout=timeout)
    for finding in findings:
        typer.echo(finding.line())
    code = exit_code(findings)
    typer.echo(
        "结论："
        + (
            "有需要马上处理的问题（✘）。"
            if code
            else "可以正常工作。" + ("（! 是建议处理的事项）" if any(f.level.name == "WARN" for f in findings) else "")
        )
    )
    raise typer.Exit(code)


def _fix_console_traces(settings: Settings) -> None:
    """`doctor --fix-console-traces`: remove what console sessions left (bot/cli/console_traces.py), say what."""
    from sqlalchemy.engine import make_url

    from bot.cli.console_traces import remove_traces
    from bot.clock import real_clock
    from bot.content import load_texts
    from bot.storage.db import SchemaTooNew, schema_revisions, session

    texts = load_texts()
    url = make_url(settings.database_url)
    if url.get_backend_name() == "sqlite" and url.database and not Path(url.database).exists():
        typer.echo(texts.t("console_traces.nothing_to_fix"))  # (and no empty file made by looking)
        return
    engine = _engine_or_exit(settings.database_url)
    try:
        try:
            current, head = schema_revisions(engine)
        except SchemaTooNew as exc:
            typer.echo(str(exc), err=True)
            raise typer.Exit(1) from None
        if current != head:
            typer.echo(texts.t("console_traces.upgrade_first", current=current or "-", head=head), err=True)
            raise typer.Exit(1)
        with session(engine) as s:
            found = remove_traces(s, now=real_clock())
            s.commit()
    finally:
        engine.dispose()
    if not found.removable():
        typer.echo(texts.t("console_traces.nothing_to_fix"))
        return
    if found.items(texts):
        typer.echo(texts.t("console_traces.fixed", items="；".join(found.items(texts))))
    if found.pushes:
        typer.echo(texts.t("console_traces.fixed_pushes", ids="、".join(f"#{i}" for i in found.pushes)))
    schedule = max((n for table, _, n in found.future if table == "scheduledrun"), default=0)
    if schedule:
        typer.echo(texts.t("console_traces.fixed_schedule", n=schedule))


@app.command()
def units(name: str = typer.Argument("", help="单位名称；不填则列出全部")) -> None:
    """单位的转发记录（近 30 天）、连续未按时次数和当前等级。"""

    from bot.clock import real_clock
    from bot.domain.escalation import standings
    from bot.domain.relay import active_units
    from bot.operations.agenda import ladder_of
    from bot.storage.db import session
    from bot.storage.models import pk

    settings = _settings()
    engine = _open_db(settings)
    now = real_clock()
    with session(engine) as s:
        if name:
            from bot.chat.dispatch import Context
            from bot.content import load_library, load_texts
            from handlers.office_records import find_unit, unit_card

            ctx = Context(session=s, now=now, settings=settings, texts=load_texts(), library=load_library())
            unit, error = find_unit(ctx, name)
            typer.echo(unit_card(ctx, unit) if unit is not None else error)
            if unit is None:
                raise typer.Exit(1)
            return
        levels = standings(s, as_of=now, tz=settings.tz, ladder=ladder_of(settings))
        all_units = active_units(s)
    if not all_units:
        typer.echo("名单为空。导入：relaybot roster import 名单.xlsx")
        return
    for unit in all_units:
        st = levels.get(pk(unit))
        typer.echo(
            f"{unit.name}（{unit.kind}）  连续未按时 {st.run if st else 0} 次  等级：{(st.level if st else '') or '正常'}"
        )


@stats_app.command("import")
def stats_import(
    file: Path = typer.Argument(..., help=".xlsx 或 .csv，表头：镇街、周期（或日期）、案件类型、警情数"),
) -> None:
    """导入警情数据（全部成功或什么都不改），并把通报排进队列发到反诈办工作群。"""

    from bot.chat.compose import stats_report_text
    from bot.content import load_library, load_texts
    from bot.domain.incidents import StatsError, import_stats, read_stats_file
    from bot.domain.relay import office_group
    from bot.operations.reporting import queue_stats_report
    from bot.storage.db import session
    from bot.transport.base import ChatKind

    settings = _settings()
    texts, library = load_texts(), load_library()
    now = clock_from(settings.clock_offset_seconds, settings.clock_speed)()  # a trial's moved clock too
    try:
        rows = read_stats_file(file, today=now.astimezone(settings.tz).date())
    except StatsError as exc:
        typer.echo(texts.t("stats.import_failed", error=str(exc)), err=True)
        raise typer.Exit(1) from None
    engine = _open_db(settings)
    with session(engine) as s:
        report = import_stats(s, rows, now=now, source=f"cli:{file.name}")
        typer.echo(texts.t("stats.imported", rows=len(rows), summary="；".join(report.lines(texts))))
        office = office_group(s)
        for period in filter(None, [report.period_to_post()]):
            if office is not None:
                shown = queue_stats_report(
                    s,
                    period=period,
                    now=now,
                    texts=texts,
                    library=library,
                    chat_kind=ChatKind.ROOM,
                    chat_id=office.room_id,
                    checkpoints=settings.checkpoint_days,
                )
                typer.echo(stats_report_text(texts, shown))
                typer.echo("（通报已排入发送队列，由运行中的机器人发到反诈办工作群）")
            else:
                from bot.domain.incidents import build_stats_report

                typer.echo(
                    stats_report_text(
                        texts,
                        build_stats_report(
                            s,
                            period_start=period[0],
                            period_end=period[1],
                            library=library,
                            checkpoints=settings.checkpoint_days,
                        ),
                    )
                )
                typer.echo("（还没有反诈办工作群，通报未发送）")
        s.commit()
    from bot.operations.reporting import render_waiting_now

    render_waiting_now(engine, texts)  # here, outside any bot: the files are in the queue before this returns


@db_app.command("upgrade")
def db_upgrade() -> None:
    """把数据库升级到本版本的结构（机器人每次启动时也会自动做）。"""
    from bot.cli.database import database_url_problem
    from bot.storage.guard import read_marker, sqlite_path

    settings = _settings()
    problem = database_url_problem(settings.database_url)  # before reading the URL for the file it names
    if problem:
        typer.echo(problem, err=True)
        raise typer.Exit(2)
    file = sqlite_path(settings.database_url)
    marker = read_marker(_marker_path(settings))
    if file is not None and marker is not None and not file.exists():
        # Run before `relaybot run` (systemd ExecStartPre): it must not make the empty database that would start.
        typer.echo(_identity_refusal(settings, marker, "missing", _marker_path(settings)), err=True)
        raise typer.Exit(2)
    if _city_without_district(settings):
        from bot.cli.city_cmd import upgrade_districts

        lines, ok = upgrade_districts(settings)
        typer.echo("\n".join(lines), err=not ok)
        if not ok:
            raise typer.Exit(1)
        return
    engine = _engine_or_exit(settings.database_url)
    done = _upgrade_or_exit(
        engine, "数据库升级失败：{error}\n如果升级做了一半，请用升级前的备份恢复（relaybot db backup 做的文件）。"
    )
    engine.dispose()
    if not done.applied:
        typer.echo(f"数据库已是最新结构（版本 {done.head}），无需升级。")
    elif done.before is None:
        typer.echo(f"已新建数据库（版本 {done.head}）。")
    else:
        typer.echo(
            f"数据库已从版本 {done.before} 升级到 {done.head}（{len(done.applied)} 步：{'、'.join(done.applied)}）。"
        )


def _city_without_district(settings: Settings, engine=None) -> bool:
    """A city's database (it has districts) used without a district: the bot and the district's commands refuse
    it (they would work in tables no district owns); `db upgrade` upgrades every district instead."""
    from bot.districtnames import is_postgres
    from bot.storage.districts import has_city

    if settings.district or not is_postgres(settings.database_url):
        return False
    own = engine is None
    engine = engine or _engine_or_exit(settings.database_url)
    try:
        with engine.connect() as conn:
            return has_city(conn)
    finally:
        if own:
            engine.dispose()


@db_app.command("accept-new")
def db_accept_new() -> None:
    """确认使用现在的数据库（机器人因数据库不是上次那个而拒绝启动时；以前的记录将不再使用）。"""
    from bot.storage.db import session
    from bot.storage.guard import database_id, read_marker

    settings = _settings()
    engine = _open_db(settings)
    before = read_marker(_marker_path(settings))
    with session(engine) as s:
        had_id = database_id(s)
    _record_clean_run(settings, engine)
    engine.dispose()
    if before is not None and before.database_id == had_id:
        typer.echo("现在的数据库就是上次运行时用的那个，无需确认。")
    else:
        typer.echo(f"已确认使用现在的数据库（记号文件 {_marker_path(settings)} 已更新），可以启动机器人了。")


@db_app.command("backup")
def db_backup(file: Path = typer.Argument(..., help="备份到这个文件，例如 backup/relaybot-2026-11-28.db")) -> None:
    """备份数据库（机器人运行时也可以做，得到的是同一时刻的完整副本）。"""
    from bot.cli.database import database_url_problem
    from bot.storage.db import backup, describe_error

    settings = _settings()
    problem = database_url_problem(settings.database_url)  # (not cli_engine: it would create a missing file)
    if problem is not None:
        typer.echo(problem, err=True)
        raise typer.Exit(2)
    try:
        target = backup(settings.database_url, file)
    except Exception as exc:
        typer.echo(f"备份失败：{describe_error(exc)}", err=True)
        raise typer.Exit(1) from None
    typer.echo(f"已备份到 {target}（{target.stat().st_size / 1024:.0f} KB）。")


def main() -> None:
    """Entry point of the `relaybot` script (typer's usage errors are shown in Chinese by bot/cli/zh.py)."""
    app(prog_name="relaybot")  # also under `python -m bot`: the usage lines name the command people type
