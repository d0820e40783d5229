"""The screenshot checker: OCR of waiting screenshots, one at a time off the event loop, and their expiry."""

from __future__ import annotations

import asyncio
import functools
import logging
from concurrent.futures import ThreadPoolExecutor
from datetime import timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Literal

from bot.domain import evidence as evidence_store
from bot.runtime.units import UnitOfWork
from bot.storage.models import EvidenceVerdict

if TYPE_CHECKING:
    from bot.adapters.screenshot_check import Ocr

log = logging.getLogger(__name__)


class EvidenceChecker:
    """Checks screenshots waiting for a verdict; OCR is loaded with the first screenshot, not at start."""

    def __init__(self, units: UnitOfWork) -> None:
        self.units = units
        self.ocr: Ocr | Literal[False] | None = None  # loaded on the first screenshot; False when no OCR is installed
        self._lock = asyncio.Lock()  # one OCR at a time: it keeps both cores busy
        self._thread = ThreadPoolExecutor(max_workers=1, thread_name_prefix="ocr")

    @property
    def settings(self):
        return self.units.settings

    def shutdown(self) -> None:
        self._thread.shutdown(wait=False, cancel_futures=True)

    async def check_waiting(self) -> int:
        """Check waiting screenshots one at a time, off the event loop; returns how many got a verdict."""
        done = 0
        async with self._lock:
            while True:
                with self.units.session() as s:
                    job = evidence_store.next_check(s)
                if job is None:
                    return done
                status, reason, phash = await self._check_one(job)
                await self.units.run(self._record, job.confirmation_id, status, reason, phash)
                done += 1

    def _record(self, confirmation_id: int, status: str, reason: str, phash: str) -> None:
        with self.units.session() as s:
            evidence_store.record_verdict(s, confirmation_id, status=status, reason=reason, phash=phash)
            s.commit()

    async def _check_one(self, job: evidence_store.CheckJob) -> tuple[str, str, str]:
        # numpy (and the OCR engine) come in with the first screenshot, not at start; Pillow is already loaded by
        # python-wechaty's qrcode
        from bot.adapters import screenshot_check

        folder = Path(self.settings.evidence_dir)
        try:
            data = await asyncio.to_thread(evidence_store.evidence_path(folder, job.file).read_bytes)
        except (OSError, ValueError):
            return EvidenceVerdict.DOUBTFUL.value, "截图文件不见了", ""
        if self.ocr is None:
            self.ocr = await asyncio.to_thread(screenshot_check.load_ocr) or False
            if not self.ocr:
                log.warning("no OCR installed (pip install -e '.[ocr]'): screenshots are stored unchecked")
        check = functools.partial(
            screenshot_check.check_screenshot,
            data,
            title=job.title,
            group_name=job.group_name,
            earlier=job.earlier,
            ocr=self.ocr or None,
        )
        try:
            async with asyncio.timeout(self.settings.evidence_check_seconds):
                # One worker thread: a check that overran its time limit still runs there, and the next waits
                # behind it, so OCR never runs twice at once.
                verdict = await asyncio.get_running_loop().run_in_executor(self._thread, check)
        except TimeoutError:
            log.warning("OCR of %s took longer than %.0f s", job.file, self.settings.evidence_check_seconds)
            return EvidenceVerdict.UNVERIFIED.value, self.units.texts.t("evidence.timeout"), ""
        return verdict.status, verdict.reason, verdict.phash

    async def expire(self) -> int:
        """Delete screenshots past the retention period (their verdicts stay)."""
        now = self.units.clock()
        keep = timedelta(days=self.settings.evidence_retention_days)

        def work() -> int:
            with self.units.session() as s:
                count = evidence_store.expire(s, Path(self.settings.evidence_dir), now=now, keep=keep)
                s.commit()
                return count

        count = await self.units.run(work)
        if count:
            log.info("deleted %d screenshots older than %d days", count, self.settings.evidence_retention_days)
        return count
