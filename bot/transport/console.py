"""A console transport: type lines as a chosen member in a chosen group, see what the bot sends."""

from __future__ import annotations

import asyncio
import sys
from typing import TextIO

from bot.transport.base import EventSink, Image, LinkCard, Member, Outgoing, RoomInfo
from bot.transport.memory import MemoryTransport

HELP = """控制台模式：直接输入文字即以当前身份在当前群发言。
  /as 名字或ID     切换发言人（/who 列出所有人）
  /room 群名       切换群；/private 切换为私聊机器人
  /image          以当前身份发一张截图
  /link URL 标题   以当前身份发一个链接卡片
  /wait 秒数       等一会儿（配合 --clock/--speed 试运行定时提醒和通报）
  /quit           退出"""


class ConsoleTransport(MemoryTransport):
    """The in-memory transport driven from a terminal; the bot's sends are printed as they happen."""

    def __init__(
        self, rooms: list[tuple[RoomInfo, list[Member]]], *, out: TextIO = sys.stdout, clock=None, tz=None
    ) -> None:
        super().__init__(bot_id="console-bot")
        self.clock, self.tz = clock, tz
        for room, members in rooms:
            self.add_room(room.room_id, room.name, members)
        self.out = out
        self.speaker: Member = rooms[0][1][0]
        self.room_id: str | None = rooms[0][0].room_id

    async def send(self, out: Outgoing) -> str | None:
        result = await super().send(out)
        stamp = f"{self.clock().astimezone(self.tz):%m-%d %H:%M} " if self.clock else ""
        print(stamp + self.render(out), file=self.out, flush=True)
        return result

    def _people(self) -> list[Member]:
        seen: dict[str, Member] = {}
        for members in self.members.values():
            for m in members:
                seen.setdefault(m.contact_id, m)
        return list(seen.values())

    def prompt(self) -> str:
        where = self.room_name(self.room_id) if self.room_id else "私聊"
        return f"[{where}] {self.speaker.name}> "

    async def handle_line(self, line: str) -> bool:
        """Act on one typed line; False means quit."""
        line = line.strip()
        if not line:
            return True
        if line in ("/quit", "/exit"):
            return False
        if line == "/help":
            print(HELP, file=self.out)
        elif line == "/who":
            for m in self._people():
                print(f"  {m.name}（{m.contact_id}）{m.group_nickname}", file=self.out)
        elif line.startswith("/as "):
            wanted = line[4:].strip()
            found = [m for m in self._people() if wanted in (m.name, m.contact_id, m.group_nickname)]
            if found:
                self.speaker = found[0]
            else:
                print(f"没有这个人：{wanted}（/who 查看）", file=self.out)
        elif line.startswith("/room "):
            wanted = line[6:].strip()
            room = next((r for r in self.room_list if wanted in (r.name, r.room_id)), None)
            if room:
                self.room_id = room.room_id
            else:
                print(f"没有这个群：{wanted}。可选：" + "、".join(r.name for r in self.room_list), file=self.out)
        elif line.startswith("/wait"):
            try:
                seconds = float(line[5:].strip() or "1")
            except ValueError:
                seconds = 1.0
            await asyncio.sleep(min(max(seconds, 0.0), 3600.0))
        elif line == "/private":
            self.room_id = None
        elif line == "/image":
            await self.send_image(
                self.speaker, Image("screenshot.jpg", b"\xff\xd8\xff console screenshot"), room_id=self.room_id
            )
        elif line.startswith("/link "):
            parts = line[6:].split(maxsplit=1)
            await self.send_link(
                self.speaker, LinkCard(parts[0], parts[1] if len(parts) > 1 else parts[0]), room_id=self.room_id
            )
        else:
            await self.say(self.speaker, line, room_id=self.room_id)
        return True

    async def repl(self, sink: EventSink, after_each=None) -> None:
        """Read lines from stdin until /quit or end of input."""
        print(HELP, file=self.out, flush=True)
        loop = asyncio.get_running_loop()
        while True:
            print(self.prompt(), end="", file=self.out, flush=True)
            line = await loop.run_in_executor(None, sys.stdin.readline)
            if not line:
                return
            if not await self.handle_line(line):
                return
            if after_each is not None:
                await after_each()
