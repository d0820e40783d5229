"""`relaybot doctor`: checks configuration, database, gateway and the bot's recorded health, in plain words.

Each check gives a Finding: OK, WARN (works, but someone should look) or ERROR (the bot cannot do its job).
`relaybot doctor` exits 1 when there is an ERROR, so it can be a container HEALTHCHECK or a cron job.
It never changes anything: no migration, no message, and its gateway call (one Version RPC) does not
disturb a running bot's event stream. (Only `relaybot doctor --fix-console-traces`, asked for by name, removes
what console trial runs left: bot/cli/console_traces.py.)
"""

from __future__ import annotations

import asyncio
import enum
import tempfile
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from sqlalchemy import func, text
from sqlalchemy.engine import make_url
from sqlmodel import col, select

from bot.config import Settings

STUCK_OUTBOX = timedelta(minutes=60)


class Level(enum.Enum):
    OK = "✔"
    WARN = "!"
    ERROR = "✘"


@dataclass(frozen=True)
class Finding:
    level: Level
    area: str
    text: str

    def line(self) -> str:
        return f"{self.level.value} {self.area}：{self.text}"


def run_checks(settings: Settings, *, now: datetime, gateway_timeout: float = 5.0) -> list[Finding]:
    """Every check, in the order a person would fix things."""
    findings = list(check_settings(settings, now))
    findings += check_database(settings, now)
    findings += check_instance(settings)
    findings += asyncio.run(_gateway(settings, gateway_timeout))
    return findings


def check_settings(settings: Settings, now: datetime) -> list[Finding]:
    area = "配置"
    out: list[Finding] = []
    try:
        tz = ZoneInfo(settings.timezone)
    except (ZoneInfoNotFoundError, ValueError):
        out.append(
            Finding(Level.ERROR, area, f"时区 {settings.timezone!r} 无效（timezone），应为 Asia/Shanghai 这样的名字")
        )
        tz = ZoneInfo("Asia/Shanghai")
    out.extend(check_unknown_keys())
    if not settings.admin_ids:
        out.append(Finding(Level.ERROR, area, "没有设置管理员（admin_ids）：谁发的指令都不会执行"))
    else:
        out.append(Finding(Level.OK, area, f"管理员 {len(settings.admin_ids)} 人"))
    if not settings.endpoint() or not settings.token():
        out.append(
            Finding(
                Level.ERROR,
                area,
                "没有设置微信网关的地址或 token（WECHATY_PUPPET_SERVICE_ENDPOINT / WECHATY_PUPPET_SERVICE_TOKEN）",
            )
        )
    try:
        from bot.adapters.webhooks import make_notifier

        notifier = make_notifier(settings.notify_kind, settings.notify_url, settings.notify_secret)
    except ValueError as exc:
        out.append(Finding(Level.ERROR, area, str(exc)))
    else:
        if notifier is None:
            out.append(
                Finding(
                    Level.WARN,
                    area,
                    "没有设置第二通道（notify_url，企业微信或钉钉群机器人）：微信断线时机器人没法告诉反诈办",
                )
            )
    if not settings.self_check_target or settings.self_check_minutes <= 0:
        out.append(Finding(Level.WARN, area, "没有设置自检（self_check_target）：发不出消息时要等有人发现"))
    out.extend(_check_folder(area, "截图文件夹", Path(settings.evidence_dir), settings))
    from bot.domain.workdays import WorkCalendar

    today = now.astimezone(tz).date()
    calendar = WorkCalendar(official=settings.official_calendar)
    years = [today.year] + ([today.year + 1] if today.month == 12 else [])
    for year in years:
        if not calendar.knows_year(year):
            out.append(
                Finding(
                    Level.WARN,
                    area,
                    f"不知道 {year} 年的法定节假日和调休：按周一到周五算。"
                    "请升级 chinese-calendar，或在群里用“休息日/工作日”录入",
                )
            )
    return out


def check_unknown_keys() -> list[Finding]:
    """Keys in relaybot.toml that are not settings (✘: the bot refuses to start), RELAYBOT_* variables that are
    not settings (!: ignored); each with the setting it was probably meant to be (issue 13)."""
    from bot.config import ConfigError, config_path, load_config_file, unknown_env_vars, unknown_file_keys
    from bot.content import load_texts

    texts = load_texts()
    try:
        found = load_config_file(config_path())
    except ConfigError:  # settings could be loaded, so the file is readable; read again after an edit
        found = None
    out = []
    for item in unknown_file_keys(found):
        hint = texts.t("config_zh.doctor_suggest", suggestion=item.suggestion) if item.suggestion else ""
        line = item.line if item.line is not None else "?"
        text = texts.t("config_zh.doctor_unknown", path=config_path(), line=line, setting=item.key, hint=hint)
        out.append(Finding(Level.ERROR, "配置", text))
    for var, suggestion in unknown_env_vars():
        hint = texts.t("config_zh.doctor_suggest", suggestion=suggestion) if suggestion else ""
        out.append(Finding(Level.WARN, "配置", texts.t("config_zh.doctor_unknown_env", env=var, hint=hint)))
    return out


def _check_folder(area: str, name: str, folder: Path, settings: Settings) -> list[Finding]:
    """The folder (or, before it exists, the folder it will be made in) can be written, with disk to spare
    (storage_min_free_mb / storage_min_free_percent: on a full disk confirmations cannot be recorded)."""
    from bot.storage.guard import free_space, human_size

    existing = folder
    while not existing.exists() and existing != existing.parent:
        existing = existing.parent
    try:
        with tempfile.NamedTemporaryFile(dir=existing, prefix=".doctor-"):
            pass
    except OSError as exc:
        return [Finding(Level.ERROR, area, f"{name} {folder} 不能写入：{exc.strerror or exc}")]
    space = free_space(existing)
    if space is not None and space.low(settings.storage_min_free_mb, settings.storage_min_free_percent):
        return [
            Finding(
                Level.WARN,
                area,
                f"{name} {folder} 所在磁盘只剩 {human_size(space.free)}（共 {human_size(space.total)}）："
                "空间用完后确认将无法记录，请尽快清理",
            )
        ]
    return []


def check_database(settings: Settings, now: datetime) -> list[Finding]:
    from bot.cli.database import database_url_problem, missing_district
    from bot.runtime.health import health_snapshot
    from bot.storage.db import SchemaTooNew, describe_error, make_engine, schema_revisions, session
    from bot.storage.models import Group, GroupKind, Outbox, OutboxState, Unit

    area = "数据库"
    problem = database_url_problem(settings.database_url)
    if problem is not None:  # a failed check; the gateway is still checked
        return [Finding(Level.ERROR, area, problem)]
    url = make_url(settings.database_url)
    if url.get_backend_name() == "sqlite" and url.database and not Path(url.database).exists():
        return [
            Finding(
                Level.WARN, area, f"数据库文件 {url.database} 还不存在：运行 relaybot db upgrade 或启动机器人会新建"
            )
        ]
    engine = make_engine(settings.database_url)
    out: list[Finding] = []
    try:
        try:
            current, head = schema_revisions(engine)
        except SchemaTooNew as exc:
            return [Finding(Level.ERROR, area, str(exc))]
        except Exception as exc:
            shown = missing_district(settings.database_url, exc)
            shown = shown or f"连不上数据库 {url.render_as_string(hide_password=True)}：{describe_error(exc)}"
            return [Finding(Level.ERROR, area, shown)]
        if current is None:
            return [Finding(Level.WARN, area, "数据库是空的：运行 relaybot db upgrade 或启动机器人会建表")]
        if current != head:
            return [
                Finding(
                    Level.WARN,
                    area,
                    f"结构版本 {current}，本程序是 {head}：请运行 relaybot db upgrade（启动机器人也会自动升级）",
                )
            ]
        out.append(Finding(Level.OK, area, f"结构版本 {head}（{url.get_backend_name()}）"))
        if url.get_backend_name() == "sqlite":
            with engine.connect() as conn:
                mode = conn.execute(text("PRAGMA journal_mode")).scalar()
            if str(mode).lower() != "wal":
                out.append(Finding(Level.WARN, area, f"SQLite 日志模式是 {mode}，不是 WAL"))
            if url.database:  # (none for an in-memory database)
                out.extend(_check_folder(area, "数据库文件夹", Path(url.database).parent, settings))
        with session(engine) as s:
            units = s.exec(select(func.count()).select_from(Unit)).one()
            kinds = {g.kind for g in s.exec(select(Group))}
            if units == 0:
                out.append(Finding(Level.WARN, "名单", "还没有导入联络员名单：relaybot roster import 名单.xlsx"))
            else:
                out.append(Finding(Level.OK, "名单", f"{units} 个单位"))
            if GroupKind.LIAISON.value not in kinds and not settings.liaison_groups:
                out.append(
                    Finding(Level.WARN, "群", "还没有联络员群：设置 liaison_groups，或管理员在群里发“设为联络员群”")
                )
            if GroupKind.OFFICE.value not in kinds and not settings.office_group:
                out.append(
                    Finding(Level.WARN, "群", "还没有反诈办工作群：设置 office_group，或管理员在群里发“设为办公群”")
                )
            out.extend(_runtime(health_snapshot(s), s, now))
            out.extend(_console_traces(s, now))
            failed = s.exec(
                select(func.count()).select_from(Outbox).where(Outbox.state == OutboxState.FAILED.value)
            ).one()
            if failed:
                out.append(Finding(Level.WARN, "发送", f"{failed} 条消息发送失败后放弃了（relaybot status 可查看）"))
            oldest = s.exec(
                select(Outbox.created_at)
                .where(Outbox.state == OutboxState.PENDING.value)
                .order_by(col(Outbox.created_at))
            ).first()
            if oldest is not None and now - oldest > STUCK_OUTBOX:
                out.append(
                    Finding(Level.WARN, "发送", f"有消息排队超过 {_ago(now - oldest)} 还没发出：机器人是否在运行？")
                )
    finally:
        engine.dispose()
    return out


def check_instance(settings: Settings) -> list[Finding]:
    """Whether a bot holds the database's single-instance lock (looked at, not taken)."""
    from bot.content import load_texts
    from bot.runtime.instance import holder
    from bot.storage.db import describe_error

    texts = load_texts()
    try:
        name = holder(settings.database_url)
    except Exception as exc:  # the database is unreachable: check_database has said why
        return [Finding(Level.WARN, "运行", texts.t("instance.doctor_unknown", error=describe_error(exc)))]
    if name is None:
        return [Finding(Level.WARN, "运行", texts.t("instance.doctor_stopped"))]
    return [
        Finding(Level.OK, "运行", texts.t("instance.doctor_running", holder=name or texts.t("instance.unknown_holder")))
    ]


def _runtime(health: dict, s, now: datetime) -> list[Finding]:
    area = "运行"
    out: list[Finding] = []
    if health["link_down_since"] is not None:
        out.append(
            Finding(Level.ERROR, area, f"微信连接断开已 {_ago(now - health['link_down_since'])}（机器人最后记录）")
        )
    if health["send_down_since"] is not None:
        out.append(Finding(Level.ERROR, area, f"自检消息发不出去已 {_ago(now - health['send_down_since'])}"))
    if health["receive_down_since"] is not None:
        out.append(Finding(Level.WARN, area, f"已 {_ago(now - health['receive_down_since'])} 收不到消息"))
    for key, label in (("last_send_ok_at", "最近一次成功发送"), ("last_receive_at", "最近一次收到消息")):
        moment = health[key]
        if moment is not None:
            out.append(Finding(Level.OK, area, f"{label}：{_ago(now - moment)}前"))
    return out


def _console_traces(s, now: datetime) -> list[Finding]:
    """What a console session or a moved clock left in this (real) database (issue 12 item 13)."""
    from bot.cli.console_traces import find_traces
    from bot.content import load_texts

    texts, traces = load_texts(), find_traces(s, now=now)
    future = traces.future_text(texts)
    if traces.removable():
        text = texts.t("console_traces.found", items="；".join(traces.items(texts)))
        return [
            Finding(Level.ERROR if traces.serious() else Level.WARN, "试运行", text + ("。" + future if future else ""))
        ]
    return [Finding(Level.WARN, "试运行", future)] if future else []


async def _gateway(settings: Settings, timeout: float) -> list[Finding]:
    from bot.runtime.health import check_gateway

    endpoint, token = settings.endpoint(), settings.token()
    if not endpoint:
        return []  # already reported with the settings
    result = await check_gateway(endpoint, token, timeout)
    return [Finding(Level.OK if result.ok else Level.ERROR, "网关", result.message)]


def _ago(delta: timedelta) -> str:
    minutes = max(0, int(delta.total_seconds() // 60))
    if minutes < 1:
        return "不到 1 分钟"
    if minutes < 120:
        return f"{minutes} 分钟"
    if minutes < 48 * 60:
        return f"{minutes // 60} 小时"
    return f"{minutes // (24 * 60)} 天"


def exit_code(findings: list[Finding]) -> int:
    return 1 if any(f.level is Level.ERROR for f in findings) else 0


__all__ = ["Finding", "Level", "check_database", "check_instance", "check_settings", "exit_code", "run_checks"]
