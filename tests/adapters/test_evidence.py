"""Screenshot evidence: real OCR (rapidocr-onnxruntime) on the committed mock WeChat screenshots."""

from __future__ import annotations

import io
import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from bot.adapters.screenshot_check import (
    Verdict,
    check_screenshot,
    hash_distance,
    load_ocr,
    normalise,
    perceptual_hash,
    title_score,
)

SHOTS = Path(__file__).parent.parent / "data" / "screenshots"
TITLE = "警惕刷单返利：先给小甜头，再骗大本金"
LONG_TITLE = "警惕“高薪兼职”刷单返利骗局：先给小甜头，再骗大本金，已有多名群众上当受骗，请务必转告身边亲友"
LIAISON = "全区反诈联络员群"
POSITIVES = ["unit_1080.png", "unit_720_q70.jpg", "unit_540_q50.jpg", "unit_dark.jpg"]


def shot(name: str) -> bytes:
    return (SHOTS / name).read_bytes()


@pytest.fixture(scope="module")
def ocr():
    engine = load_ocr()
    assert engine is not None, "rapidocr-onnxruntime must be installed for these tests"
    return engine


class NoOcr:
    """Fails the test if the OCR is reached."""

    def read(self, image_bytes: bytes) -> list[str]:
        raise AssertionError("OCR should not run")


class FakeOcr:
    def __init__(self, lines: list[str]):
        self.lines = lines

    def read(self, image_bytes: bytes) -> list[str]:
        return list(self.lines)


# --- the committed screenshots with the real OCR ----------------------------------------------------

CASES = [
    *[(name, TITLE, "已核验", "截图中有推送标题") for name in POSITIVES],
    ("unit_long_title.jpg", LONG_TITLE, "已核验", "截图中有推送标题"),
    ("reused_unit_1080.jpg", TITLE, "已核验", "截图中有推送标题"),  # on its own it is a good screenshot
    ("liaison_group.jpg", TITLE, "存疑", "截图是联络员群本身"),
    ("unit_other_alert.jpg", TITLE, "存疑", "截图中找不到推送标题"),  # 反诈预警 in chat, another alert's card
    ("unrelated_landscape.jpg", TITLE, "存疑", "截图中找不到推送标题"),
]


@pytest.mark.parametrize(("name", "title", "status", "reason"), CASES, ids=[c[0] for c in CASES])
def test_screenshot_verdicts(ocr, name, title, status, reason):
    data = shot(name)
    assert len(data) < 200_000
    verdict = check_screenshot(data, title=title, group_name=LIAISON, earlier=[], ocr=ocr)
    assert (verdict.status, verdict.reason) == (status, reason), verdict
    assert verdict.phash == perceptual_hash(data)
    if status == "已核验" or reason == "截图是联络员群本身":
        assert verdict.title_score >= 85
    else:
        assert verdict.title_score < 70


def test_ocr_lines_come_top_to_bottom_with_the_header_first(ocr):
    lines = ocr.read(shot("unit_720_q70.jpg"))
    joined = normalise("".join(lines))
    assert normalise("城关镇全体干部群") in normalise("".join(lines[:4]))
    assert joined.index(normalise("各位同事")) < joined.index(normalise(TITLE)[:8])


def test_the_engine_runs_with_the_measured_settings(ocr):
    """The settings in screenshot_check (memory and time, see benchmarks/README.md) reach onnxruntime and rapidocr."""
    from rapidocr_onnxruntime.utils.infer_engine import OrtInferSession

    from bot.adapters import screenshot_check as evidence

    engine = ocr._engine
    for session in (engine.text_det.infer.session, engine.text_rec.session.session):
        options = session.get_session_options()
        assert options.enable_mem_pattern is False
        assert options.enable_cpu_mem_arena is False
        assert options.get_session_config_entry("session.intra_op.allow_spinning") == "0"
        assert options.intra_op_num_threads == evidence.RAPIDOCR_SETTINGS["intra_op_num_threads"]
        assert options.inter_op_num_threads == 1
    assert engine.text_rec.rec_batch_num == 1
    detect = engine.text_det.get_preprocess(2000)
    assert (detect.limit_type, detect.limit_side_len) == ("max", evidence.DET_MAX_SIDE)
    assert detect.resize(np.zeros((2340, 1080, 3), np.uint8)).shape[:2] == (960, 448)
    # rapidocr's own session options are back once the engine is built (onnxruntime raises for an unset entry)
    with pytest.raises(Exception, match="allow_spinning"):
        OrtInferSession._init_sess_opts({}).get_session_config_entry("session.intra_op.allow_spinning")


def test_freed_memory_is_returned_after_every_image(ocr, monkeypatch):
    from bot.adapters import screenshot_check as evidence

    calls = []
    monkeypatch.setattr(evidence, "_trim", lambda: calls.append(1))
    blank = io.BytesIO()
    Image.new("RGB", (64, 48), "white").save(blank, "PNG")
    assert ocr.read(blank.getvalue()) == []
    assert calls == [1]


# --- reuse via perceptual hash --------------------------------------------------------------------


def test_resized_recompressed_copy_is_flagged_with_its_owner():
    original = perceptual_hash(shot("unit_1080.png"))
    copy = shot("reused_unit_1080.jpg")
    assert hash_distance(original, perceptual_hash(copy)) <= 8
    earlier = [(perceptual_hash(shot("unrelated_landscape.jpg")), "城东街道"), (original, "区教育局")]
    verdict = check_screenshot(copy, title=TITLE, group_name=LIAISON, earlier=earlier, ocr=NoOcr())
    assert verdict == Verdict("存疑", "与区教育局的截图相同", 0.0, perceptual_hash(copy))


@pytest.mark.parametrize(
    ("a", "b"),
    [
        ("unit_1080.png", "unrelated_landscape.jpg"),
        ("unit_1080.png", "unit_dark.jpg"),
        ("unit_1080.png", "liaison_group.jpg"),
        ("unit_1080.png", "unit_long_title.jpg"),
        ("unit_dark.jpg", "unrelated_landscape.jpg"),
        ("liaison_group.jpg", "unrelated_landscape.jpg"),
        # Two quiet chats with the same layout, only the card differs: must not look like a reused image.
        ("unit_long_title.jpg", "unit_other_alert.jpg"),
        # The same chat, screenshotted at another size and moment by another phone.
        ("unit_1080.png", "unit_540_q50.jpg"),
    ],
)
def test_different_pictures_are_far_apart(a, b):
    assert hash_distance(perceptual_hash(shot(a)), perceptual_hash(shot(b))) > 12


def test_earlier_far_hashes_do_not_flag(ocr):
    earlier = [(perceptual_hash(shot(n)), "某单位") for n in ("unrelated_landscape.jpg", "unit_dark.jpg")]
    verdict = check_screenshot(shot("unit_1080.png"), title=TITLE, group_name=LIAISON, earlier=earlier, ocr=ocr)
    assert verdict.status == "已核验"


def test_hash_format_and_distance():
    h = perceptual_hash(shot("unit_1080.png"))
    assert len(h) == 64 and int(h, 16) >= 0
    assert hash_distance(h, h) == 0
    assert hash_distance("0" * 16, "f" * 16) == 64
    assert hash_distance("", h) == 256
    assert hash_distance("not-hex", h) == 256


def test_reuse_check_ignores_bad_stored_hashes():
    verdict = check_screenshot(
        shot("unit_1080.png"), title=TITLE, group_name=LIAISON, earlier=[("", "甲"), ("zz", "乙")], ocr=None
    )
    assert verdict.status == "未核验"


# --- no OCR, broken input -------------------------------------------------------------------------


def test_without_ocr_the_screenshot_is_kept_unverified():
    data = shot("unit_720_q70.jpg")
    verdict = check_screenshot(data, title=TITLE, group_name=LIAISON, earlier=[], ocr=None)
    assert verdict == Verdict("未核验", "未安装文字识别，截图已保存未核验", 0.0, perceptual_hash(data))


def _truncated_png() -> bytes:
    return shot("unit_1080.png")[:5000]


def _huge_png() -> bytes:
    buf = io.BytesIO()
    Image.new("1", (8000, 8000)).save(buf, "PNG")  # 64 Mpx, a few kB on disk
    return buf.getvalue()


@pytest.mark.parametrize(
    "data",
    [b"", b"not an image at all", b"\x89PNG\r\n\x1a\n" + b"\0" * 100, b"\xff\xd8\xff" + bytes(range(256)) * 4],
    ids=["empty", "text", "png-magic-only", "jpeg-magic-garbage"],
)
def test_garbage_bytes_are_doubtful_without_raising(data):
    verdict = check_screenshot(data, title=TITLE, group_name=LIAISON, earlier=[("0" * 16, "甲")], ocr=NoOcr())
    assert verdict == Verdict("存疑", "图片无法读取", 0.0, "")


def test_truncated_and_huge_images_are_doubtful():
    for data in (_truncated_png(), _huge_png()):
        verdict = check_screenshot(data, title=TITLE, group_name=LIAISON, earlier=[], ocr=NoOcr())
        assert (verdict.status, verdict.reason) == ("存疑", "图片无法读取")


def test_ocr_failure_is_unverified_not_an_exception():
    class Broken:
        def read(self, image_bytes: bytes) -> list[str]:
            raise RuntimeError("onnxruntime exploded")

    verdict = check_screenshot(shot("unit_540_q50.jpg"), title=TITLE, group_name=LIAISON, earlier=[], ocr=Broken())
    assert verdict.status == "未核验"
    assert verdict.phash


def test_load_ocr_returns_none_when_rapidocr_is_missing(monkeypatch):
    monkeypatch.setitem(sys.modules, "rapidocr_onnxruntime", None)  # makes the import raise ImportError
    assert load_ocr() is None


# --- plain-text OCR (no positions): header = the first lines ---------------------------------------


def test_liaison_group_header_with_plain_lines():
    lines = ["9:41", "5G 87", "全区反诈联络员群（58）", "区反诈中心", TITLE, "请各单位联络员转发", "收到", "收到"]
    verdict = check_screenshot(
        shot("unit_540_q50.jpg"), title=TITLE, group_name=LIAISON, earlier=[], ocr=FakeOcr(lines)
    )
    assert (verdict.status, verdict.reason) == ("存疑", "截图是联络员群本身")


def test_liaison_group_named_low_in_a_long_unit_chat_is_not_the_header():
    lines = [
        "9:41",
        "5G 87",
        "城关镇全体干部群(36)",
        *[f"消息{i}" for i in range(30)],
        "全区反诈联络员群",
        "刷单返利",
        "警惕刷单返利:先给小甜头,",
        "再骗大本金",
    ]
    verdict = check_screenshot(
        shot("unit_540_q50.jpg"), title=TITLE, group_name=LIAISON, earlier=[], ocr=FakeOcr(lines)
    )
    assert verdict.status == "已核验"


def test_keywords_alone_are_not_enough():
    lines = ["9:41", "城关镇全体干部群", "反诈预警", "警惕刷单", "收到，已转发反诈预警", "返利"]
    verdict = check_screenshot(
        shot("unit_540_q50.jpg"), title=TITLE, group_name=LIAISON, earlier=[], ocr=FakeOcr(lines)
    )
    assert (verdict.status, verdict.reason) == ("存疑", "截图中找不到推送标题")
    assert verdict.title_score < 85


# --- normalise / title_score -------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("警惕刷单返利：先给小甜头，再骗大本金", "警惕刷单返利先给小甜头再骗大本金"),
        ("城关镇全体干部群（36）", "城关镇全体干部群36"),
        ("城关镇全体干部群(36)", "城关镇全体干部群36"),
        ("【预警】《通知》〔一〕「引」『号』", "预警通知一引号"),
        ("“高薪兼职” ‘刷单’", "高薪兼职刷单"),
        ("５Ｇ　８７\tＡＢｃ\n", "5g87abc"),
        ("再骗大本…", "再骗大本"),
        ("再骗大本···", "再骗大本"),
        ("", ""),
    ],
)
def test_normalise(raw, expected):
    assert normalise(raw) == expected


def test_title_score_joined_wrapped_lines_with_noise():
    ocr_text = "".join(
        ["9:41", "城关镇全体干部群(36)", "伟", "警惕刷单返利：先给小甜头，", "再骗大本金", "刷单就是诈骗！"]
    )
    assert title_score(ocr_text, TITLE) == 100.0


def test_title_score_survives_one_misread_character():
    assert title_score("群聊警惕刷单返利：先给小甜大，再骗大本金", TITLE) >= 85


def test_title_score_long_title_truncated_in_card():
    ocr_text = "警惕“高薪兼职”刷单返利骗局：先给小甜头，再骗大本···刷单就是诈骗"
    assert title_score(ocr_text, LONG_TITLE) == 100.0
    assert title_score(ocr_text, LONG_TITLE, head=60) < 85  # the cut-off tail is why only the head is matched


def test_title_score_other_alert_and_empty():
    assert title_score("警惕冒充电商客服退款诈骗：不要点陌生链接", TITLE) < 60
    assert title_score("", TITLE) == 0.0


def test_title_score_short_text_is_not_found_inside_the_title():
    # rapidfuzz's partial_ratio would align "刷单返利" inside the title and give 100
    assert title_score("刷单返利", TITLE) < 50
    assert title_score("?MM", TITLE) == 0.0
    assert title_score("警惕刷单返利先给小甜头再骗大本金", TITLE) == 100.0  # exactly the title is fine


def test_short_header_fragment_is_not_the_liaison_group():
    lines = ["9:41", "联络员", "城关镇全体干部群", TITLE]
    verdict = check_screenshot(
        shot("unit_540_q50.jpg"), title=TITLE, group_name=LIAISON, earlier=[], ocr=FakeOcr(lines)
    )
    assert verdict.status == "已核验"
    assert title_score("anything", "：，") == 0.0
