"""End to end (issue 16, "Done when"): three district bots, each with its own Wechaty gateway process, on one
PostgreSQL database. A city push (`relaybot city push`) reaches every district's liaison group once, numbered in
the district's own sequence; confirmations count in their own district and in the city's progress; one district's
bot killed with -9 and restarted loses nothing, pushes the city push it missed once (and not the earlier one
again), and the other districts go on undisturbed; two bots of one district cannot run at once."""

from __future__ import annotations

import os
import re
import secrets
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

import pytest
from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url

from bot.content import load_texts
from bot.operations.city import city_progress
from bot.storage.db import make_engine
from tests.bot_process import ROOT, BotProcess, gateway_env, relaybot
from tests.conftest import POSTGRES_URL
from tests.gateway_harness import Gateway, texts_to, wait_until

pytestmark = [pytest.mark.e2e, pytest.mark.postgres]

ADMIN = "wxid_city_admin"
UNITS = 3
PUSH = re.compile(r"^【反诈预警 #(\d+)】")


@dataclass
class District:
    name: str
    tag: str  # ids and unit names: distinct per district
    liaison_room: str
    office_room: str
    gateway: Gateway | None = None
    bot: BotProcess | None = None
    env: dict[str, str] = field(default_factory=dict)
    url: str = ""  # the district's own login (printed by `relaybot district add`)

    @property
    def liaison_topic(self) -> str:
        return f"{self.name}联络员群"

    def unit(self, i: int) -> str:
        return f"{self.tag}单位{i}"

    def liaison(self, i: int) -> str:
        return f"wxid_{self.tag}_{i}"

    def pushes(self, since: int = 0) -> list[str]:
        assert self.gateway is not None
        return [t for t in texts_to(self.gateway.sent(since), self.liaison_room) if PUSH.match(t)]

    def city_pushes(self, city_no: int) -> list[str]:
        return [t for t in self.pushes() if f"（全市第{city_no}号）" in t]

    def heard(self) -> list[str]:
        """The pushes and acknowledgements the liaison group has had (not the timed reminders, whose hour the real
        clock decides)."""
        assert self.gateway is not None
        return [t for t in texts_to(self.gateway.sent(), self.liaison_room) if PUSH.match(t) or t.startswith("✅")]

    def say(self, i: int, words: str) -> None:
        assert self.gateway is not None
        self.gateway.say(self.liaison(i), words, room=self.liaison_room)

    def wait_ack(self, n: int, done: int) -> None:
        """Until the liaison group has the acknowledgement of #n that says `done` units have confirmed it."""
        assert self.gateway is not None
        self.gateway.wait_sent(
            lambda items: any(
                t.startswith(f"✅ 已记录 #{n}") and t.endswith(f"目前已确认 {done}/{UNITS}。")
                for t in texts_to(items, self.liaison_room)
            ),
            timeout=30,
        )

    def wait_office(self, part: str) -> None:
        """Until the office group has a message with `part` in it."""
        assert self.gateway is not None
        self.gateway.wait_sent(lambda items: any(part in t for t in texts_to(items, self.office_room)), timeout=30)

    def ask_office(self, words: str, reply: str) -> str:
        """The admin says `words` in the district's office group; the bot's reply containing `reply`."""
        assert self.gateway is not None
        mark = len(self.gateway.sent())
        self.gateway.say(ADMIN, words, room=self.office_room)
        sent = self.gateway.wait_sent(
            lambda items: any(reply in t for t in texts_to(items, self.office_room)), since=mark, timeout=30
        )
        return next(t for t in texts_to(sent, self.office_room) if reply in t)


HAIHU = District("海湖区", "海湖", "61001@chatroom", "61000@chatroom")
CHENGDONG = District("城东区", "城东", "62001@chatroom", "62000@chatroom")
CHENGXI = District("城西区", "城西", "63001@chatroom", "63000@chatroom")


@pytest.fixture
def city_url():
    """A fresh empty database (not the template: `relaybot district add` makes the schemas); dropped afterwards
    with the district roles made for it."""
    admin = create_engine(POSTGRES_URL, isolation_level="AUTOCOMMIT")
    name = f"t_city_{secrets.token_hex(5)}"
    with admin.connect() as conn:
        conn.execute(text(f"CREATE DATABASE {name}"))
    yield make_url(POSTGRES_URL).set(database=name).render_as_string(hide_password=False)
    with admin.connect() as conn:
        conn.execute(text(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)"))
        roles = conn.execute(text("SELECT rolname FROM pg_roles WHERE rolname LIKE :p"), {"p": f"relaybot_{name}_%"})
        for (role,) in roles.all():
            conn.execute(text(f'DROP ROLE IF EXISTS "{role}"'))
    admin.dispose()


@pytest.fixture
def districts():
    every = [District(d.name, d.tag, d.liaison_room, d.office_room) for d in (HAIHU, CHENGDONG, CHENGXI)]
    yield every
    for d in every:
        if d.bot is not None:
            d.bot.stop()
            d.bot.close()
        if d.gateway is not None:
            d.gateway.stop()


def _start_gateway(d: District) -> None:
    gw = Gateway.start()
    gw.contact(ADMIN, "市反诈中心-陈静")
    for i in range(1, UNITS + 1):
        gw.contact(d.liaison(i), f"{d.tag}联络员{i}")
    gw.room(d.liaison_room, d.liaison_topic, [ADMIN, *(d.liaison(i) for i in range(1, UNITS + 1))])
    gw.room(d.office_room, f"{d.name}反诈办", [ADMIN])
    d.gateway = gw


def _add_districts(city: str, every: list[District], tmp_path: Path) -> None:
    for d in every:
        added = relaybot("district", "add", d.name, db_url=city, cwd=tmp_path)
        assert added.returncode == 0, added.stdout + added.stderr
        d.url = added.stdout.split("RELAYBOT_DATABASE_URL='")[1].split("'")[0]  # its own login, as on its server
    listed = relaybot("district", "list", db_url=city, cwd=tmp_path)
    assert listed.returncode == 0 and "全市 3 个区：海湖区、城东区、城西区" in listed.stdout, listed.stderr


def _import_roster(city: str, d: District, tmp_path: Path) -> None:
    roster = tmp_path / f"roster-{d.tag}.csv"
    lines = ["单位,类别,联络员,微信ID,微信昵称,手机,角色"]
    lines += [f"{d.unit(i)},其他,{d.tag}联络员{i},{d.liaison(i)},,1390000{i:04d},主" for i in range(1, UNITS + 1)]
    roster.write_text("\n".join(lines) + "\n", encoding="utf-8")
    imported = relaybot("roster", "import", str(roster), db_url=d.url, cwd=tmp_path, RELAYBOT_DISTRICT=d.name)
    assert imported.returncode == 0, imported.stdout + imported.stderr


def _start_bot(city: str, d: District, tmp_path: Path) -> None:
    assert d.gateway is not None
    workdir = tmp_path / d.tag
    workdir.mkdir(exist_ok=True)
    d.env = gateway_env(
        d.gateway,
        d.url,
        workdir,
        admin=ADMIN,
        liaison_groups=d.liaison_topic,
        office_group=d.office_room,
        RELAYBOT_DISTRICT=d.name,
        RELAYBOT_SCHEDULE_CHECK_SECONDS="0.3",
    )
    d.bot = BotProcess(d.env, workdir)
    d.bot.start(timeout=120)


def _parallel(*calls) -> None:
    with ThreadPoolExecutor(len(calls)) as pool:
        for future in [pool.submit(call) for call in calls]:
            future.result()


class City:
    """The city's view, read as `relaybot city progress` reads it (the login user, every district)."""

    def __init__(self, url: str) -> None:
        self.engine = make_engine(url)
        self.texts = load_texts()

    def counts(self, number: int) -> dict[str, tuple[str, int | None, int, int]]:
        """Per district: (state, district #N, confirmed, total)."""
        with self.engine.begin() as conn:
            p = city_progress(conn, number, texts=self.texts)
        return {d.district.name: (d.state, d.push_no, d.confirmed, d.total) for d in p.districts}

    def wait(self, number: int, expected: dict[str, tuple[str, int | None, int, int]]) -> None:
        wait_until(lambda: self.counts(number), lambda c: c == expected, 30, f"city push {number}'s progress")


def _city_cli(city: str, tmp_path: Path, *args: str) -> str:
    done = relaybot("city", *args, db_url=city, cwd=tmp_path)
    assert done.returncode == 0, done.stdout + done.stderr
    return done.stdout


def test_three_district_bots_share_one_postgresql(city_url, districts, tmp_path):
    haihu, chengdong, chengxi = districts
    _parallel(
        *(lambda d=d: _start_gateway(d) for d in districts), lambda: _add_districts(city_url, districts, tmp_path)
    )
    _parallel(*(lambda d=d: _import_roster(city_url, d, tmp_path) for d in districts))
    _parallel(*(lambda d=d: _start_bot(city_url, d, tmp_path) for d in districts))
    city = City(city_url)
    try:
        _run(city, city_url, haihu, chengdong, chengxi, tmp_path)
    finally:
        city.engine.dispose()


def _run(city: City, url: str, haihu: District, chengdong: District, chengxi: District, tmp_path: Path) -> None:
    every = (haihu, chengdong, chengxi)
    assert all(d.gateway is not None and d.bot is not None for d in every)
    # 海湖区 pushes on its own first: its number for the city's push is #2, the others' #1.
    haihu.ask_office("推送 刷单", "已推送")
    wait_until(haihu.pushes, lambda p: len(p) == 1, 30, "海湖区's own push")
    assert haihu.pushes()[0].startswith("【反诈预警 #1】") and "全市" not in haihu.pushes()[0]

    # ---- city push 1 reaches every district's liaison group -----------------------------------------------------
    out = _city_cli(url, tmp_path, "push", "刷单")
    assert "全市第1号" in out and "3 个区" in out, out
    for d in every:
        wait_until(lambda d=d: d.city_pushes(1), bool, 30, f"city push 1 in {d.name}")
    assert haihu.city_pushes(1)[0].startswith("【反诈预警 #2】")
    assert chengdong.city_pushes(1)[0].startswith("【反诈预警 #1】")
    assert chengxi.city_pushes(1)[0].startswith("【反诈预警 #1】")
    # Each district's office group is told the city's push went out there, with its own number.
    for d, n in ((haihu, 2), (chengdong, 1), (chengxi, 1)):
        d.wait_office(f"市反诈中心的全市第1号推送已发到本区：已推送 #{n}「")

    # ---- confirmations, each in its own district ----------------------------------------------------------------
    haihu.say(1, "已转发 #2")
    haihu.say(2, f"{haihu.unit(2)} 已转发 #2")
    for i in range(1, UNITS + 1):
        chengdong.say(i, "已转发")
    chengxi.say(1, "已转发")
    first = {"海湖区": ("sent", 2, 2, 3), "城东区": ("sent", 1, 3, 3), "城西区": ("sent", 1, 1, 3)}
    city.wait(1, first)
    # 城西区's acknowledgement is out (nothing of it left to send when it is killed below).
    chengxi.wait_ack(1, 1)
    shown = _city_cli(url, tmp_path, "progress", "1")
    assert "全市：6/9 个单位已确认" in shown, shown
    for line in ("海湖区 #2：2/3", "城东区 #1：3/3", "城西区 #1：1/3"):
        assert line in shown.splitlines(), shown

    # Each district's own 进度 counts its own units only.
    reply = haihu.ask_office("进度 #2", "已确认")
    assert "已确认 2/3" in reply and haihu.unit(3) in reply, reply
    assert "城东" not in reply and "城西" not in reply, reply
    reply = chengxi.ask_office("进度", "已确认")
    assert reply.startswith("#1「") and "已确认 1/3" in reply, reply
    assert chengxi.unit(2) in reply and chengxi.unit(3) in reply and "海湖" not in reply and "城东" not in reply

    # ... and so do the district's command-line tools (RELAYBOT_DISTRICT).
    status = relaybot("status", db_url=chengdong.url, cwd=tmp_path, RELAYBOT_DISTRICT=chengdong.name)
    assert status.returncode == 0, status.stdout + status.stderr
    assert "进行中的推送：1 条" in status.stdout and "已确认 3/3" in status.stdout, status.stdout
    assert "城东区联络员群" in status.stdout and "海湖" not in status.stdout and "城西" not in status.stdout
    units = relaybot("units", db_url=chengdong.url, cwd=tmp_path, RELAYBOT_DISTRICT=chengdong.name)
    assert units.returncode == 0, units.stdout + units.stderr
    listed = [line.split("（")[0] for line in units.stdout.splitlines() if line.strip()]
    assert listed == [chengdong.unit(i) for i in range(1, UNITS + 1)], units.stdout

    # ---- two bots of one district cannot run at once; its bot goes on -------------------------------------------
    _second_bot_of(chengdong)

    # ---- 城西区's bot killed with -9; city push 2 while it is down --------------------------------------------------
    assert chengxi.bot is not None
    chengxi.bot.kill()
    out = _city_cli(url, tmp_path, "push", "刷单", "--yes")  # the same type again today: on purpose
    assert "全市第2号" in out, out
    for d in (haihu, chengdong):
        wait_until(lambda d=d: d.city_pushes(2), bool, 30, f"city push 2 in {d.name}")
    assert haihu.city_pushes(2)[0].startswith("【反诈预警 #3】")
    assert chengdong.city_pushes(2)[0].startswith("【反诈预警 #2】")
    for i in range(1, UNITS + 1):
        haihu.say(i, "已转发 #3")
    chengdong.say(1, "已转发")
    chengdong.say(2, "已转发 #2")
    second_down = {"海湖区": ("sent", 3, 3, 3), "城东区": ("sent", 2, 2, 3), "城西区": ("waiting", None, 0, 0)}
    city.wait(2, second_down)
    shown = _city_cli(url, tmp_path, "progress")  # the newest: 2
    assert "全市第2号" in shown and "全市：5/6 个单位已确认" in shown, shown
    assert "城西区：区机器人还没发出" in shown.splitlines(), shown
    assert chengxi.city_pushes(2) == []
    # The other districts have said all they had to (their acknowledgements are out) before 城西区 comes back.
    haihu.wait_ack(3, 3)
    chengdong.wait_ack(2, 2)
    others = {d.name: d.heard() for d in (haihu, chengdong)}

    # ---- restarted: city push 2 goes out once, push 1 not again, its confirmations all there ---------------------
    mark = len(chengxi.gateway.sent())
    chengxi.bot.start(timeout=120)
    wait_until(lambda: chengxi.city_pushes(2), bool, 30, "city push 2 in 城西区 after the restart")
    assert chengxi.city_pushes(2)[0].startswith("【反诈预警 #2】")
    chengxi.wait_office("市反诈中心的全市第2号推送已发到本区：已推送 #2「")
    city.wait(1, first)
    chengxi.say(2, "已转发 #2")
    chengxi.say(3, "已转发 #2")
    second = {"海湖区": ("sent", 3, 3, 3), "城东区": ("sent", 2, 2, 3), "城西区": ("sent", 2, 2, 3)}
    city.wait(2, second)
    reply = chengxi.ask_office("进度 #1", "已确认")
    assert "已确认 1/3" in reply, reply

    shown = _city_cli(url, tmp_path, "progress", "2")
    assert "全市：7/9 个单位已确认" in shown, shown
    for line in ("海湖区 #3：3/3", "城东区 #2：2/3", "城西区 #2：2/3"):
        assert line in shown.splitlines(), shown
    shown = _city_cli(url, tmp_path, "progress", "1")
    assert "全市：6/9 个单位已确认" in shown, shown

    # 城西区's return changed nothing in the other districts (their groups heard nothing more).
    assert {d.name: d.heard() for d in (haihu, chengdong)} == others

    # Exactly once each, in every district; nothing else pushed; the other districts' bots never stopped.
    for d in every:
        assert len(d.city_pushes(1)) == 1, d.pushes()
        assert len(d.city_pushes(2)) == 1, d.pushes()
    assert len(haihu.pushes()) == 3 and len(chengdong.pushes()) == 2 and len(chengxi.pushes()) == 2
    assert not [t for t in chengxi.pushes(mark) if "全市第1号" in t]
    for d in (haihu, chengdong):
        assert d.bot is not None and d.bot.process is not None and d.bot.process.poll() is None, d.name
        assert "lost the Wechaty event stream" not in d.bot.log()
        assert "Traceback" not in d.bot.log(), d.bot.log()


def _second_bot_of(d: District) -> None:
    """A second bot of district `d` (same database, same district) exits 2 naming the first; the first goes on."""
    assert d.bot is not None and d.bot.process is not None
    clean = {k: v for k, v in os.environ.items() if not k.startswith(("RELAYBOT_", "WECHATY_"))}
    second = subprocess.run(
        [sys.executable, "-m", "bot", "run"],
        cwd=d.bot.workdir,
        env={**clean, **d.env, "PYTHONPATH": str(ROOT)},
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert second.returncode == 2, second.stdout + second.stderr
    assert "另一个机器人进程正在使用这个数据库" in second.stderr
    assert f"pid={d.bot.process.pid} " in second.stderr
    assert "ready as" not in second.stderr + second.stdout
    assert d.bot.process.poll() is None
