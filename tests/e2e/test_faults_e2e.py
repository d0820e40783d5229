"""Faults through the real Wechaty gateway (gRPC on 127.0.0.1) with the bot as a process and a real SQLite file:
kill -9 in the middle of a burst of confirmations, and the gateway's gRPC server going away and coming back."""

from __future__ import annotations

import random
import re
import threading
import time
from collections import Counter

import pytest
from sqlmodel import select

from bot.storage.db import make_engine, session
from bot.storage.models import BotState, Confirmation, Outbox, Unit
from tests.bot_process import BotProcess, gateway_env, relaybot
from tests.gateway_harness import Gateway, wait_until

pytestmark = pytest.mark.e2e  # the bot as a process against the real Node gateway

ADMIN = "wxid_admin_chen"
OFFICE_ROOM = "50000@chatroom"
ACK = re.compile(r"^✅ 已记录 #(\d+)(?:（迟报）)?：(.+)（本次 (\d+) 个单位）。目前已确认 (\d+)/(\d+)。$")
CONFIRMATIONS = ["已转发", "已转发 #1", "{unit} 已转发", "转发了", "已转 👍"]


def unit_name(i: int) -> str:
    return f"单位{i:03d}"


def liaison_id(i: int) -> str:
    return f"wxid_liaison_{i:03d}"


def write_roster(path, units: int) -> None:
    lines = ["单位,类别,联络员,微信ID,微信昵称,手机,角色"]
    lines += [f"{unit_name(i)},其他,联络员{i:03d},{liaison_id(i)},,1390000{i:04d},主" for i in range(1, units + 1)]
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")


def texts_to(items, chat_id):
    return [i["text"] for i in items if i["conversation_id"] == chat_id and i["kind"] == "text"]


def pushed(items, chat_id) -> int:
    return sum(t.startswith("【反诈预警 #1】") for t in texts_to(items, chat_id))


class Db:
    def __init__(self, url: str) -> None:
        self.engine = make_engine(url)

    def confirmed(self) -> Counter:
        """Confirmations of push #1 per unit name."""
        with session(self.engine) as s:
            units = {u.id: u.name for u in s.exec(select(Unit))}
            return Counter(units[c.unit_id] for c in s.exec(select(Confirmation).where(Confirmation.push_id == 1)))

    def outbox(self, push_id: int) -> list[tuple[str, int]]:
        with session(self.engine) as s:
            return [
                (r.state, r.attempts)
                for r in s.exec(select(Outbox).where(Outbox.push_id == push_id, Outbox.alert_id.is_not(None)))
            ]

    def state(self, key: str) -> str | None:
        with session(self.engine) as s:
            row = s.get(BotState, key)
            return row.value if row else None


@pytest.fixture
def db(db_url):
    handle = Db(db_url)
    yield handle
    handle.engine.dispose()


def start_bot(processes, gateway, tmp_path, db_url, liaison_groups: str, **env: str) -> BotProcess:
    bot = BotProcess(
        gateway_env(
            gateway, db_url, tmp_path, admin=ADMIN, liaison_groups=liaison_groups, office_group=OFFICE_ROOM, **env
        ),
        tmp_path,
    )
    processes.append(bot)
    return bot.start()


def setup_people(gateway: Gateway, tmp_path, db_url, units: int) -> None:
    gateway.contact(ADMIN, "陈静")
    for i in range(1, units + 1):
        gateway.contact(liaison_id(i), f"联络员{i:03d}")
    gateway.room(OFFICE_ROOM, "反诈办工作群", [ADMIN])
    roster = tmp_path / "roster.csv"
    write_roster(roster, units)
    imported = relaybot("roster", "import", str(roster), db_url=db_url, cwd=tmp_path)
    assert imported.returncode == 0, imported.stderr


@pytest.fixture
def gateway():
    gw = Gateway.start()
    yield gw
    gw.stop()


# ---- kill -9 in the middle of a burst ----------------------------------------------------------------------------


def acks_in(items, room: str) -> list[tuple[str, list[str], int]]:
    """The acknowledgements the group has seen, each once (a crash can make the bot send one twice), in order:
    (text, unit names, 'done' count)."""
    seen, acks = set(), []
    for text in texts_to(items, room):
        match = ACK.match(text)
        if match is None or text in seen:
            continue
        seen.add(text)
        names = match.group(2).split("、")
        assert int(match.group(1)) == 1 and int(match.group(3)) == len(names), text
        acks.append((text, names, int(match.group(4))))
    return acks


def burst_plan(units: int, waves: int) -> list[list[tuple[int, str]]]:
    """Each unit confirms five times: first in its own wave, the repeats in that wave or the next two, so that new
    confirmations and repeats arrive throughout the burst, about the same number in each wave."""
    rng = random.Random(6)
    plan: list[list[tuple[int, str]]] = [[] for _ in range(waves)]
    per_wave = units // waves
    for i in range(1, units + 1):
        first = (i - 1) // per_wave
        texts = [t.format(unit=unit_name(i)) for t in CONFIRMATIONS]
        plan[first].append((i, texts[0]))
        for text in texts[1:]:
            plan[min(rng.randint(first, first + 2), waves - 1)].append((i, text))
    for wave in plan:
        rng.shuffle(wave)
    return plan


def test_kill_9_during_a_burst_of_500_confirmations_keeps_every_acknowledged_one(
    gateway, tmp_path, db_url, db, processes
):
    began = time.monotonic()
    units, room = 100, "50001@chatroom"
    setup_people(gateway, tmp_path, db_url, units)
    gateway.room(room, "全区反诈联络员群", [ADMIN, *(liaison_id(i) for i in range(1, units + 1))])
    bot = start_bot(processes, gateway, tmp_path, db_url, "全区反诈联络员群")
    gateway.say(ADMIN, "推送 刷单", room=OFFICE_ROOM)
    gateway.wait_sent(lambda items: pushed(items, room) == 1, timeout=10)
    mark = len(gateway.sent())

    plan = burst_plan(units, waves=10)
    assert sum(map(len, plan)) == 500
    said = [0]
    wave_pause = 1.6  # longer than ack_quiet_seconds (1) + ack_check_seconds (0.2): each wave is acknowledged

    resume = threading.Event()

    def burst() -> None:
        for n, wave in enumerate(plan):
            if n == 5:  # the sixth wave waits until the bot has caught up (a loaded machine may lag far behind)
                resume.wait(timeout=300)
            for i, text in wave:
                gateway.say(liaison_id(i), text, room=room)
                said[0] += 1
            time.sleep(wave_pause)

    driver = threading.Thread(target=burst, daemon=True)
    driver.start()
    # Once the group has been told about the 50 units of the first five waves, kill -9 halfway through the sixth:
    # confirmations are arriving, some stored and not yet acknowledged.
    wait_until(
        lambda: acks_in(gateway.sent(mark), room),
        lambda acks: sum(len(a[1]) for a in acks) >= 50,
        180,
        "acknowledgements of 50 units",
    )
    kill_at = sum(map(len, plan[:5])) + len(plan[5]) // 2
    resume.set()
    wait_until(lambda: said[0], lambda n: n >= kill_at, 60, "the burst to reach the kill point")
    bot.kill()
    killed = time.monotonic()
    said_at_kill = said[0]

    # "Acknowledged" means: named in an acknowledgement the bot sent into the group, as the gateway recorded it
    # (what the liaisons saw). Nothing more can be sent now: the process is gone.
    acks_before = acks_in(gateway.sent(mark), room)
    acknowledged = [name for _, names, _ in acks_before for name in names]
    stored = db.confirmed()
    assert 0 < said_at_kill < 500, "the kill must land in the middle of the burst"
    assert set(acknowledged) <= set(stored), set(acknowledged) - set(stored)
    assert all(n == 1 for n in stored.values())
    print(
        f"killed after {said_at_kill}/500 messages said; {len(acknowledged)} units acknowledged, {len(stored)} stored"
    )

    driver.join(timeout=60)
    assert not driver.is_alive()
    # What was said while the bot was down never reaches it (the gateway keeps no backlog).
    bot.start()

    # Everything stored before the kill is acknowledged now without anyone repeating it, each unit once.
    wait_until(
        lambda: acks_in(gateway.sent(mark), room),
        lambda acks: {n for a in acks for n in a[1]} >= set(stored),
        10,
        "the acknowledgements owed from before the kill",
    )
    # Liaisons whose confirmation was lost say it once more.
    for i in range(1, units + 1):
        if unit_name(i) not in stored:
            gateway.say(liaison_id(i), "已转发", room=room)
    acks = wait_until(
        lambda: acks_in(gateway.sent(mark), room),
        lambda acks: sum(len(a[1]) for a in acks) >= units,
        20,
        "every unit to be acknowledged",
    )
    names = [name for _, names, _ in acks for name in names]
    assert sorted(names) == sorted(unit_name(i) for i in range(1, units + 1))  # each named once, none twice
    running = 0
    for text, named, done in acks:  # the running count never counts a unit twice
        running += len(named)
        assert done == running, text
    assert db.confirmed() == Counter({unit_name(i): 1 for i in range(1, units + 1)})
    mark = len(gateway.sent())
    gateway.say(ADMIN, "进度", room=OFFICE_ROOM)
    progress = gateway.wait_sent(lambda items: texts_to(items, OFFICE_ROOM), since=mark, timeout=10)
    assert "已确认 100/100" in texts_to(progress, OFFICE_ROOM)[-1]
    print(
        f"burst test: {time.monotonic() - began:.1f} s in all, {time.monotonic() - killed:.1f} s of it after the kill"
    )


# ---- the gateway goes away and comes back ------------------------------------------------------------------------


def test_the_gateway_stops_and_comes_back_and_nothing_queued_is_lost(gateway, tmp_path, db_url, db, processes):
    began = time.monotonic()
    rooms = {f"5001{k}@chatroom": f"联络员{k}群" for k in range(1, 4)}
    setup_people(gateway, tmp_path, db_url, 12)
    for k, (room_id, name) in enumerate(rooms.items()):
        gateway.room(room_id, name, [ADMIN, *(liaison_id(i) for i in range(4 * k + 1, 4 * k + 5))])
    bot = start_bot(processes, gateway, tmp_path, db_url, ",".join(rooms.values()))
    pid = bot.process.pid
    mark = len(gateway.sent())

    offset = len(bot.log())
    gateway.stop_grpc()
    wait_until(lambda: bot.log(offset), lambda log: "lost the Wechaty event stream" in log, 10, "the bot to notice")
    # A cron job queues a push while the gateway is down.
    queued = relaybot("push", "刷单", db_url=db_url, cwd=tmp_path)
    assert queued.returncode == 0, queued.stderr
    time.sleep(5.5)  # the sender looks at the outbox at least every 5 s: it would have tried by now
    assert db.outbox(1) == [("pending", 0)] * 3  # not even tried: no failure, so no 30-minute pause
    assert db.state("send_backoff_until") is None

    gateway.start_grpc()
    back = time.monotonic()
    gateway.wait_sent(lambda items: all(pushed(items, r) for r in rooms), since=mark, timeout=15)
    delivered = time.monotonic() - back
    time.sleep(1.0)  # more sending turns: nothing may follow
    sent = gateway.sent(mark)
    assert {r: pushed(sent, r) for r in rooms} == {r: 1 for r in rooms}
    assert db.outbox(1) == [("sent", 1)] * 3
    assert bot.process.pid == pid and bot.process.poll() is None

    # Messages after the recovery are handled.
    mark = len(gateway.sent())
    for k, room_id in enumerate(rooms):
        for i in range(4 * k + 1, 4 * k + 5):
            gateway.say(liaison_id(i), "已转发", room=room_id)
    gateway.wait_sent(
        lambda items: all(any(ACK.match(t) for t in texts_to(items, r)) for r in rooms), since=mark, timeout=10
    )
    assert db.confirmed() == Counter({unit_name(i): 1 for i in range(1, 13)})
    mark = len(gateway.sent())
    gateway.say(ADMIN, "进度", room=OFFICE_ROOM)
    progress = gateway.wait_sent(lambda items: texts_to(items, OFFICE_ROOM), since=mark, timeout=10)
    assert "已确认 12/12" in texts_to(progress, OFFICE_ROOM)[-1]
    print(f"push delivered to all groups {delivered:.2f} s after gRPC came back; test {time.monotonic() - began:.1f} s")


def test_a_fan_out_cut_by_the_gateway_going_away_reaches_every_group_after_it_is_back(
    gateway, tmp_path, db_url, db, processes
):
    rooms = {f"502{k:02d}@chatroom": f"扇区{k:02d}联络员群" for k in range(20)}
    setup_people(gateway, tmp_path, db_url, 1)
    for room_id, name in rooms.items():
        gateway.room(room_id, name, [ADMIN, liaison_id(1)])
    start_bot(processes, gateway, tmp_path, db_url, ",".join(rooms.values()), RELAYBOT_SEND_SPACING_SECONDS="0.3")
    mark = len(gateway.sent())
    gateway.say(ADMIN, "推送 公检法", room=OFFICE_ROOM)
    wait_until(
        lambda: gateway.sent(mark),
        lambda items: sum(pushed(items, r) for r in rooms) >= 5,
        15,
        "five groups to have the push",
    )
    gateway.stop_grpc()
    assert sum(pushed(gateway.sent(mark), r) for r in rooms) < 20
    time.sleep(3.0)
    gateway.start_grpc()
    gateway.wait_sent(lambda items: all(pushed(items, r) for r in rooms), since=mark, timeout=20)
    time.sleep(1.0)
    copies = Counter({r: pushed(gateway.sent(mark), r) for r in rooms})
    # Every group has it. The one send cut off in flight (if any) may arrive twice: at least once, never lost.
    assert min(copies.values()) == 1 and sum(copies.values()) - len(rooms) <= 1, copies
    assert [state for state, _ in db.outbox(1)] == ["sent"] * 20
    assert db.state("send_backoff_until") is None  # a dropped connection is not WeChat refusing to send
