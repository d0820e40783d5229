"""The second channel: health problems also go to the office's webhook robot, if one is configured."""

from __future__ import annotations

import asyncio
import logging

from bot.adapters.webhooks import Notifier

log = logging.getLogger(__name__)


class SecondChannel:
    """Alerts for the office's webhook robot (WeCom or DingTalk): the chat may be what is broken.

    `alert()` never waits and never raises; it must be called on the event loop (units of work running in a
    worker thread return their alert texts instead of sending them).
    """

    def __init__(self, notifier: Notifier | None = None) -> None:
        self.notifier = notifier
        self._tasks: set[asyncio.Task] = set()  # the loop keeps only weak references to tasks

    @property
    def configured(self) -> bool:
        return self.notifier is not None

    @property
    def busy(self) -> bool:
        """An alert is still being delivered (or retried)."""
        return bool(self._tasks)

    def alert(self, text: str) -> None:
        """Send `text` to the robot in the background, if one is configured."""
        if self.notifier is None:
            return
        task = asyncio.get_running_loop().create_task(self.notifier.send(text))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    def alert_all(self, texts: list[str]) -> None:
        """Each of `texts`, in order."""
        for text in texts:
            self.alert(text)
