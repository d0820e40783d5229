"""`relaybot district …` and `relaybot city …`: the districts of a city on one PostgreSQL database, and the city's
pushes and their progress. Run with the city's database_url and no `district` setting (the login that made the
districts reads and writes every district)."""

from __future__ import annotations

from pathlib import Path

import typer

from bot.cli.zh import ZhTyper

district_app = ZhTyper(help="全市多区：每个区一个机器人，共用一个 PostgreSQL 数据库", no_args_is_help=True)
city_app = ZhTyper(help="市反诈中心：全市推送与各区进度", no_args_is_help=True)


def _city_engine():
    """The city's engine (its own login: database_url, no district), or exit 2 saying why it cannot be."""
    from bot.cli import main as m
    from bot.districtnames import is_postgres

    settings = m._settings()
    if not is_postgres(settings.database_url):
        typer.echo(
            "全市多区要用 PostgreSQL：请把 database_url 设为 postgresql+psycopg://…（见 README“全市多区”）。", err=True
        )
        raise typer.Exit(2)
    if settings.district:
        typer.echo(
            f'这是一个区的配置（district = "{settings.district}"）：加区、全市推送、全市进度要用市里的配置'
            "（市里的数据库账号，不设 district）运行。",
            err=True,
        )
        raise typer.Exit(2)
    return settings, m._engine_or_exit(settings.database_url)


@district_app.command("add")
def district_add(name: str = typer.Argument(..., help="区名，例如 海湖区")) -> None:
    """加一个区：建它的数据库账号、schema 和全部表，并打印该区机器人用的数据库地址（含密码，只显示这一次）。"""
    from bot.clock import real_clock
    from bot.districtnames import DistrictError, login_url
    from bot.storage.db import describe_error
    from bot.storage.districts import add_district

    settings, engine = _city_engine()
    try:
        with engine.begin() as conn:
            added = add_district(conn, name, now=real_clock())
    except DistrictError as exc:
        typer.echo(str(exc), err=True)
        raise typer.Exit(2) from None
    except Exception as exc:
        typer.echo(
            f"加区失败，什么都没有改：{describe_error(exc)}\n市里的数据库账号要能建角色（createuser --createrole）"
            "并且是这个数据库的所有者（createdb --owner），见 README“全市多区”。",
            err=True,
        )
        raise typer.Exit(1) from None
    finally:
        engine.dispose()
    district = added.district
    url = login_url(settings.database_url, district.role, added.password)
    typer.echo(
        f"已加 {district.name}（schema “{district.schema}”，数据库账号 {district.role}）。\n"
        f"{district.name}机器人的配置（密码只显示这一次，请放在该区服务器的 /etc/relaybot/env 里）：\n"
        f"  RELAYBOT_DATABASE_URL='{url}'\n"
        f"  RELAYBOT_DISTRICT='{district.name}'\n"
        f"忘了密码：relaybot district password {district.name}（旧密码随即失效）。"
    )


@district_app.command("password")
def district_password(name: str = typer.Argument(..., help="区名")) -> None:
    """给一个区的数据库账号换新密码（旧密码随即失效），并打印该区机器人用的数据库地址。"""
    from bot.districtnames import DistrictError, check_name, login_url
    from bot.storage.districts import districts, reset_password

    settings, engine = _city_engine()
    try:
        wanted = check_name(name)
        with engine.begin() as conn:
            found = [d for d in districts(conn) if d.name == wanted]
            if not found:
                raise DistrictError(f"没有“{wanted}”这个区：relaybot district list 看有哪些区。")
            password = reset_password(conn, found[0])
    except DistrictError as exc:
        typer.echo(str(exc), err=True)
        raise typer.Exit(2) from None
    finally:
        engine.dispose()
    typer.echo(
        f"{wanted}的数据库账号已换新密码，该区机器人改用：\n"
        f"  RELAYBOT_DATABASE_URL='{login_url(settings.database_url, found[0].role, password)}'"
    )


@district_app.command("list")
def district_list() -> None:
    """列出全市各区。"""
    from bot.storage.districts import districts

    _, engine = _city_engine()
    with engine.connect() as conn:
        every = districts(conn)
    engine.dispose()
    if not every:
        typer.echo("这个数据库里还没有区：用 relaybot district add 区名 加区。")
        return
    typer.echo(f"全市 {len(every)} 个区：" + "、".join(d.name for d in every))


def upgrade_districts(settings) -> tuple[list[str], bool]:
    """Bring every district of the city to the newest schema, as the city's login (which owns the tables); one
    line per district, and whether all of them could be upgraded (one that fails does not stop the others)."""
    from bot.cli import main as m
    from bot.districtnames import district_url
    from bot.storage.db import SchemaTooNew, describe_error, make_engine, upgrade_schema
    from bot.storage.districts import districts, grant_district

    engine = m._engine_or_exit(settings.database_url)
    with engine.connect() as conn:
        every = districts(conn)
    lines, ok = [], True
    for district in every:
        district_engine = make_engine(district_url(settings.database_url, district.name, as_district=False))
        try:
            done = upgrade_schema(district_engine)
            with engine.begin() as conn:
                grant_district(conn, district)
        except SchemaTooNew as exc:
            lines.append(f"{district.name}：{exc}")
            ok = False
            continue
        except Exception as exc:
            lines.append(f"{district.name}：升级失败：{describe_error(exc)}")
            ok = False
            continue
        finally:
            district_engine.dispose()
        lines.append(
            f"{district.name}：已是最新结构（版本 {done.head}）"
            if not done.applied
            else f"{district.name}：已升级到 {done.head}（{len(done.applied)} 步）"
        )
    engine.dispose()
    return lines, ok


@city_app.command("push")
def city_push(
    case_type: str = typer.Argument(..., help="案件类型或简称，如 刷单、公检法"),
    yes: bool = typer.Option(
        False, "--yes", "-y", help="今天已做过同一类型的全市推送时也再推一次（相当于聊天里的“确认”）"
    ),
) -> None:
    """全市推送：预警库里该类型的预警推到每个区；各区机器人按自己的节奏发到本区联络员群，编本区的号。"""
    from bot.clock import real_clock
    from bot.content import load_library, load_texts
    from bot.operations.city import CityError, CityRepeat, push_to_city, repeat_text

    library, texts = load_library(), load_texts()
    item = library.find(case_type)
    if item is None:
        typer.echo(texts.t("push.unknown_type", name=case_type, types="、".join(library.case_types())), err=True)
        raise typer.Exit(1)
    settings, engine = _city_engine()
    now = real_clock()
    try:
        with engine.begin() as conn:
            done = push_to_city(
                conn,
                item,
                now=now,
                actor_id="cli",
                actor_name="relaybot city push",
                settings=settings,
                texts=texts,
                again=yes,
            )
    except CityRepeat as repeat:
        typer.echo(repeat_text(texts, repeat, case=item.case_type, tz=settings.tz, how="city.again_cli"), err=True)
        raise typer.Exit(1) from None
    except CityError as exc:
        typer.echo(str(exc), err=True)
        raise typer.Exit(1) from None
    finally:
        engine.dispose()
    typer.echo(texts.t("city.pushed", n=done.number, title=done.title, count=len(done.districts)))


@city_app.command("progress")
def city_progress(number: int = typer.Argument(0, help="全市第几号推送；不填为最新一条")) -> None:
    """全市推送的进度：每个区已确认的单位数/应转发的单位数。"""
    from bot.content import load_texts
    from bot.operations.city import CityError, city_progress, latest_number, progress_text

    texts = load_texts()
    settings, engine = _city_engine()
    try:
        with engine.begin() as conn:
            n = number or latest_number(conn)
            if n is None:
                typer.echo(texts.t("city.nothing_pushed"), err=True)
                raise typer.Exit(1)
            result = city_progress(conn, n, texts=texts)
    except CityError as exc:
        typer.echo(str(exc), err=True)
        raise typer.Exit(1) from None
    finally:
        engine.dispose()
    typer.echo(progress_text(texts, result, tz=settings.tz))


@city_app.command("report")
def city_report(
    period: str = typer.Argument("", help="月份，如 2026-11、2026年11月；不填为上个月（也可写周 2026-W47 或日期段）"),
    out: Path | None = typer.Option(None, "--out", help="输出的 .xlsx 文件（默认 全市通报_2026-11.xlsx）"),
) -> None:
    """全市通报：各区排名（转发率）、全市未转发最多的单位，写成 .xlsx（全市、未转发最多、每区一页）。"""
    from bot.cli import main as m
    from bot.content import load_texts
    from bot.domain.periods import parse_period, period_code, period_label, previous_period
    from bot.operations.city import CityError
    from bot.operations.city_report import city_month_report

    texts = load_texts()
    settings, engine = _city_engine()
    now = m._moved_now(settings)
    today = now.astimezone(settings.tz).date()
    try:
        if period.strip():
            span = parse_period(period, today=today)
            if span is None:
                typer.echo(texts.t("cityreport.bad_period", text=period), err=True)
                raise typer.Exit(2)
            if span[0] > today:
                typer.echo(texts.t("cityreport.future", period=period_label(texts, *span)), err=True)
                raise typer.Exit(2)
        else:
            span = previous_period("month", today)
        try:
            with engine.begin() as conn:
                text, xlsx = city_month_report(conn, span, now=now, texts=texts, settings=settings)
        except CityError as exc:
            typer.echo(str(exc), err=True)
            raise typer.Exit(1) from None
    finally:
        engine.dispose()
    path = out or Path(f"全市通报_{period_code(*span)}.xlsx")
    path = path if path.suffix.lower() == ".xlsx" else path.with_suffix(".xlsx")
    if xlsx is None:
        typer.echo(text + "\n" + texts.t("cityreport.not_written", path=path))
        return
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(xlsx)
    typer.echo(text + "\n" + texts.t("cityreport.written", path=path))
