"""`relaybot demo` says plainly what it is and shows a believable verdict on its own screenshot (issue 13: it called
itself "内存传输" and its screenshot came out as "存疑：图片无法读取")."""

from __future__ import annotations

import importlib.util
import io

from bot.adapters.screenshot_check import UNVERIFIED, VERIFIED, check_screenshot, load_ocr
from bot.cli.demo import DEMO_TITLE, DEMO_UNIT_GROUP, LIAISON_NAME, demo_screenshot, run_demo

OCR_INSTALLED = importlib.util.find_spec("rapidocr_onnxruntime") is not None
TITLE = "警惕刷单返利：先给小甜头，再骗大本金"  # the push's title, as the check gets it


def test_the_demo_screenshot_is_a_real_image_that_the_check_reads():
    shot = demo_screenshot(DEMO_UNIT_GROUP, DEMO_TITLE)
    assert shot[:3] == b"\xff\xd8\xff"  # a JPEG
    without_ocr = check_screenshot(shot, title=TITLE, group_name=LIAISON_NAME, earlier=[], ocr=None)
    assert without_ocr.status == UNVERIFIED and without_ocr.phash  # decoded and hashed, not "图片无法读取"
    if OCR_INSTALLED:
        verdict = check_screenshot(shot, title=TITLE, group_name=LIAISON_NAME, earlier=[], ocr=load_ocr())
        assert (verdict.status, verdict.reason) == (VERIFIED, "截图中有推送标题"), verdict


async def test_the_demo_names_itself_plainly_and_shows_the_screenshot_verdict(tmp_path):
    out = io.StringIO()
    await run_demo(out, tmp_path)
    text = out.getvalue()
    first = text.splitlines()[0]
    assert first.startswith("反诈联络员群助手 演示：一天的转发闭环（演示，不连接微信；演示数据在 "), first
    assert "内存传输" not in text and "图片无法读取" not in text and "存疑 1" not in text
    if OCR_INSTALLED:
        assert "—— 截图核验（本机文字识别）：已核验，截图中有推送标题 ——" in text
        assert "截图：已核验 1，未核验 0，存疑 0，待核验 0，无截图 3" in text  # 14:05 进度
        assert "截图 1 张：已核验 1，存疑 0" in text  # the day report
    else:
        assert "截图核验：本机没有安装文字识别" in text
        assert "截图：已核验 0，未核验 1，存疑 0，待核验 0，无截图 3" in text
