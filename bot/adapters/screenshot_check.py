"""Checks a liaison's screenshot that claims an alert was forwarded into the unit's own group.

Offline only. The order of the checks:
1. the bytes must decode as an image, else 存疑 "图片无法读取";
2. a near-identical image used before (another unit, another push) -> 存疑, naming its owner;
3. no OCR installed -> 未核验 (the screenshot is kept for a person to look at);
4. the liaison group's own name in the chat header -> 存疑 "截图是联络员群本身";
5. the push title found in the text -> 已核验, else 存疑 "截图中找不到推送标题".

OCR (rapidocr-onnxruntime, PP-OCRv4, set up as measured in RapidOcr's settings) takes 1.5-1.8 s of CPU per image
spread over both cores, and the process peaks at 310-370 MB while it runs: call check_screenshot off the event
loop (asyncio.to_thread) and one image at a time.
"""

from __future__ import annotations

import contextlib
import functools
import io
import logging
import math
import os
import threading
import unicodedata
from dataclasses import dataclass
from typing import TYPE_CHECKING, Protocol, runtime_checkable

from bot.storage.models import EvidenceVerdict

if TYPE_CHECKING:
    from collections.abc import Iterator

    import numpy as np
    from PIL import Image

# numpy and Pillow (about 14 MB) are imported on the first screenshot, not when the bot starts: most days
# bring none, and the long-running process should not carry them for nothing.

log = logging.getLogger(__name__)

VERIFIED = EvidenceVerdict.VERIFIED.value
UNVERIFIED = EvidenceVerdict.UNVERIFIED.value
DOUBTFUL = EvidenceVerdict.DOUBTFUL.value

REASON_TITLE_FOUND = "截图中有推送标题"
REASON_TITLE_MISSING = "截图中找不到推送标题"
REASON_LIAISON_GROUP = "截图是联络员群本身"
REASON_UNREADABLE = "图片无法读取"
REASON_NO_OCR = "未安装文字识别，截图已保存未核验"

HEADER_FRACTION = 0.15  # the status bar and the chat's title bar
_MIN_HEADER_LINES = 4  # time, network/battery text and the group title, when positions are unknown
_MAX_PIXELS = 40_000_000  # a phone screenshot is 2-4 Mpx; bigger is not a screenshot


@dataclass(frozen=True)
class Verdict:
    status: str  # "已核验" | "未核验" | "存疑"
    reason: str  # short Chinese reason shown to the office
    title_score: float
    phash: str  # hex perceptual hash of the image ("" when the image cannot be read)


# --- perceptual hash -------------------------------------------------------------------------------


def _dct_matrix(n: int) -> np.ndarray:
    import numpy as np

    k = np.arange(n)[:, None]
    x = np.arange(n)[None, :]
    m = np.cos(np.pi * (2 * x + 1) * k / (2 * n)) * math.sqrt(2 / n)
    m[0] /= math.sqrt(2)
    return m


@functools.cache
def _dct32() -> np.ndarray:
    return _dct_matrix(32)


def _open(image_bytes: bytes) -> Image.Image:
    """Decodes fully (raises on truncated or bogus data) and applies the EXIF rotation."""
    from PIL import Image, ImageOps

    img = Image.open(io.BytesIO(image_bytes))
    if img.width * img.height > _MAX_PIXELS:
        raise ValueError(f"image too large: {img.width}x{img.height}")
    img.load()
    return ImageOps.exif_transpose(img)


HASH_SIDE = 16
HASH_BITS = HASH_SIDE * HASH_SIDE


def _phash(img: Image.Image) -> str:
    # pHash on 32x32 grey with a 2-D DCT, keeping the 16x16 lowest frequencies -> 256 bits. The classic 8x8 (64 bits)
    # puts two different screenshots of quiet chats with the same layout only ~6-10 bits apart; 256 bits puts them
    # 18-36 apart while a resized, re-compressed copy stays at 0-2.
    import numpy as np
    from PIL import Image

    grey = img.convert("L").resize((32, 32), Image.Resampling.LANCZOS)
    pixels = np.asarray(grey, dtype=np.float64)
    dct = _dct32()
    low = (dct @ pixels @ dct.T)[:HASH_SIDE, :HASH_SIDE].flatten()
    bits = low > np.median(low)
    return f"{int(''.join('1' if b else '0' for b in bits), 2):0{HASH_BITS // 4}x}"


def perceptual_hash(image_bytes: bytes) -> str:
    """256-bit pHash as 64 hex digits. Raises on bytes that are not an image."""
    return _phash(_open(image_bytes))


def hash_distance(a: str, b: str) -> int:
    """Hamming distance of two hex hashes; unparsable or empty hashes are as far apart as possible."""
    try:
        return (int(a, 16) ^ int(b, 16)).bit_count()
    except (TypeError, ValueError):
        return HASH_BITS


# --- text matching ---------------------------------------------------------------------------------


def normalise(text: str) -> str:
    """NFKC, lower case, without whitespace, punctuation (incl. all bracket/quote variants) or control chars."""
    out = []
    for ch in unicodedata.normalize("NFKC", text).casefold():
        cat = unicodedata.category(ch)
        if cat[0] in "PZC" or ch.isspace():
            continue
        out.append(ch)
    return "".join(out)


def title_score(ocr_text: str, title: str, *, head: int = 20) -> float:
    """0-100: how well the first `head` characters of the (normalised) title occur in the OCR text."""
    from rapidfuzz import fuzz

    needle = normalise(title)[:head]
    hay = normalise(ocr_text)
    if not needle or not hay:
        return 0.0
    if len(hay) < len(needle):
        # partial_ratio aligns the *shorter* string inside the longer one: a picture reading just "刷单"
        # would score 100 against the title. Text shorter than the title head is compared whole.
        return float(fuzz.ratio(needle, hay))
    return float(fuzz.partial_ratio(needle, hay))


# --- OCR -------------------------------------------------------------------------------------------


@runtime_checkable
class Ocr(Protocol):
    def read(self, image_bytes: bytes) -> list[str]:
        """OCR lines, top to bottom."""
        ...


# How the engine is set up. Each setting was measured with benchmarks/ocr_bench.py on both of its sets of
# screenshots (numbers in benchmarks/README.md); with rapidocr's defaults a check took 1.2 s on an idle machine
# (7.7-10 s and 4.3-5.2 s of CPU on the shared, loaded one the numbers below come from) and the whole process
# peaked at 640-710 MB. The numbers below each setting are from one process checking both sets.

# Text detection (the DB network: nearly all the memory, a good part of the time) runs on the image scaled so that its
# longer side is at most DET_MAX_SIDE px. rapidocr 1.4.4 only ever enlarges for detection ("min" mode, shorter side
# at least 736 px) and its "max" mode ignores det_limit_side_len (it picks 960/1500/2000 from the image size), so
# a 1080x2340 screenshot was detected at 923x2000 (after its global 2000 px cap): about 500 MB of activations.
# At 960 px a phone's 15-16 dp chat text is still about 19 px high and its 11 dp names 13 px, plenty for DB; the
# lines found are then read at full resolution, as before. Measured: peak 750 -> 550 MB at 1280 px, 404 MB at
# 960 px, CPU time per screenshot 4.7 -> 3.5 s on the loaded machine, every verdict and title score on both
# sets unchanged. Most of the time left is recognition, which is the same work at any detection size.
DET_MAX_SIDE = 960

RAPIDOCR_SETTINGS: dict[str, object] = {
    # One line per recognition run instead of 6: a batch is padded to its widest line, and PP-OCRv4's recogniser
    # costs in proportion to the padded width. Measured: recognition of a 29-line screenshot 13.4 s -> 10.3 s on
    # the loaded machine (12 per batch: 17.8 s), 14 MB lower peak, the same text on both sets.
    "rec_batch_num": 1,
    # Two threads inside an operator (the 2 cores), none across operators (the models are single chains). rapidocr
    # passes these to onnxruntime; its -1 default lets onnxruntime choose, which is the same on 2 cores but more
    # threads contending on a bigger machine that also runs the bot.
    "intra_op_num_threads": min(2, os.cpu_count() or 1),
    "inter_op_num_threads": 1,
}
# onnxruntime options rapidocr 1.4.4 has no parameter for. It already turns the CPU memory arena off and runs
# the operators sequentially (onnxruntime's default).
SESSION_OPTIONS: dict[str, object] = {
    # The memory pattern plans one block per input shape; every screenshot and every text line has another shape,
    # so it only adds: peak 444 -> 413 MB with it off, no measurable time difference.
    "enable_mem_pattern": False,
}
SESSION_CONFIG: dict[str, str] = {
    # onnxruntime's worker threads spin while waiting for work; on 2 cores shared with the bot and other processes
    # that burns the CPU the other thread needs. Measured on the loaded machine: CPU time per screenshot
    # 4.0 -> 2.5 s, wall time 8.6 -> 4.3 s (detection at 1280 px, the other settings above).
    "session.intra_op.allow_spinning": "0",
}


@contextlib.contextmanager
def _session_options() -> Iterator[None]:
    """While rapidocr builds its onnxruntime sessions, adds SESSION_OPTIONS and SESSION_CONFIG to its own options.

    rapidocr makes the SessionOptions inside OrtInferSession._init_sess_opts; wrapping that for the constructor's
    duration (under a lock) avoids building every session twice. tests/test_evidence.py checks the options reach
    the sessions, so a rapidocr that builds them elsewhere fails a test instead of silently losing them.
    """
    from rapidocr_onnxruntime.utils import infer_engine

    cls = infer_engine.OrtInferSession
    original = cls.__dict__["_init_sess_opts"]

    def with_ours(config):  # noqa: ANN001, ANN202 - rapidocr's signature
        options = original.__func__(config)
        for name, value in SESSION_OPTIONS.items():
            setattr(options, name, value)
        for key, value in SESSION_CONFIG.items():
            options.add_session_config_entry(key, value)
        return options

    with _BUILD_LOCK:
        cls._init_sess_opts = staticmethod(with_ours)
        try:
            yield
        finally:
            cls._init_sess_opts = original


_BUILD_LOCK = threading.Lock()


@functools.cache
def _libc_trim():  # noqa: ANN202
    import ctypes
    import ctypes.util

    try:
        return ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6").malloc_trim
    except (OSError, AttributeError):  # not glibc (musl, macOS): nothing to trim
        return None


def _trim() -> None:
    """Gives the heap memory onnxruntime freed back to the system after each image (glibc's malloc_trim).

    Every image and text line has its own tensor shapes; glibc keeps the freed buffers in its heaps (its mmap
    threshold rises after the first big free) and the next image's buffers of other sizes land beside them, so
    the resident size crept up image after image: 297 -> 423 MB over the 9 committed screenshots. Trimmed after
    each one it stays at 240-300 MB; the call takes a few milliseconds and only returns memory already free.
    """
    trim = _libc_trim()
    if trim is not None:
        trim(0)


class RapidOcr:
    """rapidocr-onnxruntime (PP-OCRv4 models shipped in the wheel; no download), set up as measured above."""

    def __init__(self) -> None:
        from rapidocr_onnxruntime import RapidOCR
        from rapidocr_onnxruntime.ch_ppocr_det.utils import DetPreProcess

        with _session_options():
            self._engine = RapidOCR(**RAPIDOCR_SETTINGS)
        det = self._engine.text_det
        bounded = DetPreProcess(DET_MAX_SIDE, "max", det.mean, det.std)
        det.get_preprocess = lambda _longer_side: bounded  # see DET_MAX_SIDE
        self._lock = threading.Lock()  # one image at a time: a second run only competes for the same 2 cores

    def read_positioned(self, image_bytes: bytes) -> list[tuple[str, float]]:
        """(text, top edge as a fraction of the image height), top to bottom."""
        img = _open(image_bytes).convert("RGB")
        with self._lock:
            try:
                result, _ = self._engine(img, use_cls=False)  # screenshots are upright; cls only costs time
            finally:
                _trim()
        lines = []
        for box, text, _score in result or []:
            top = min(p[1] for p in box) / img.height
            lines.append((str(text), float(top)))
        lines.sort(key=lambda line: line[1])
        return lines

    def read(self, image_bytes: bytes) -> list[str]:
        return [text for text, _ in self.read_positioned(image_bytes)]


def load_ocr() -> Ocr | None:
    """The offline OCR engine, or None when rapidocr-onnxruntime is not installed (the bot runs without it)."""
    try:
        return RapidOcr()
    except ImportError:
        return None
    except Exception:  # a broken install (e.g. onnxruntime without its native libs) must not stop the bot
        log.exception("文字识别无法加载")
        return None


def _header_and_body(ocr: Ocr, image_bytes: bytes) -> tuple[list[str], list[str]]:
    positioned = getattr(ocr, "read_positioned", None)
    if callable(positioned):
        lines = positioned(image_bytes)
        texts = [text for text, _ in lines]
        header = [text for text, top in lines if top <= HEADER_FRACTION]
        return header, texts
    texts = list(ocr.read(image_bytes))
    count = max(_MIN_HEADER_LINES, math.ceil(len(texts) * HEADER_FRACTION))
    return texts[:count], texts


def _group_in_header(header: list[str], group_name: str, threshold: float) -> bool:
    from rapidfuzz import fuzz

    name = normalise(group_name)
    if not name:
        return False
    for line in header:
        text = normalise(line)
        # same short-text trap as in title_score: "联络员" alone must not match the whole group name
        if len(text) >= len(name) and fuzz.partial_ratio(name, text) >= threshold:
            return True
    return False


def check_screenshot(
    image_bytes: bytes,
    *,
    title: str,
    group_name: str,
    earlier: list[tuple[str, str]],
    ocr: Ocr | None,
    threshold: float = 85.0,
    max_distance: int = 8,
) -> Verdict:
    """The verdict on one screenshot; never raises."""
    try:
        phash = _phash(_open(image_bytes))
    except Exception:  # noqa: BLE001 - anything a hostile or broken file can raise
        return Verdict(DOUBTFUL, REASON_UNREADABLE, 0.0, "")

    best: tuple[int, str] | None = None
    for other_hash, owner in earlier:
        dist = hash_distance(phash, other_hash)
        if dist <= max_distance and (best is None or dist < best[0]):
            best = (dist, owner)
    if best is not None:
        return Verdict(DOUBTFUL, f"与{best[1]}的截图相同", 0.0, phash)

    if ocr is None:
        return Verdict(UNVERIFIED, REASON_NO_OCR, 0.0, phash)

    try:
        header, lines = _header_and_body(ocr, image_bytes)
    except Exception:  # noqa: BLE001
        log.exception("文字识别失败")
        return Verdict(UNVERIFIED, "文字识别失败，截图已保存未核验", 0.0, phash)

    score = title_score("".join(lines), title)
    if _group_in_header(header, group_name, threshold):
        return Verdict(DOUBTFUL, REASON_LIAISON_GROUP, score, phash)
    if score >= threshold:
        return Verdict(VERIFIED, REASON_TITLE_FOUND, score, phash)
    return Verdict(DOUBTFUL, REASON_TITLE_MISSING, score, phash)
