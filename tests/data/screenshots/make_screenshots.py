"""Draws the mock WeChat screenshots used by tests/adapters/test_evidence.py.

Run from the repository root: `python tests/data/screenshots/make_screenshots.py`.
The outputs are committed, so CI needs neither this script's font nor its run; the font is the
Noto Sans CJK SC that the mplfonts package (a project dependency) ships.
Layouts are drawn at 1080 px wide and scaled (`s`) for the smaller phones, like WeChat's dp layout.
"""

from __future__ import annotations

import io
import random
from pathlib import Path

from PIL import Image, ImageDraw, ImageFont

from bot.reports.render import cjk_font_path

OUT = Path(__file__).resolve().parent
TITLE = "警惕刷单返利：先给小甜头，再骗大本金"
LONG_TITLE = "警惕“高薪兼职”刷单返利骗局：先给小甜头，再骗大本金，已有多名群众上当受骗，请务必转告身边亲友"
OTHER_TITLE = "警惕冒充电商客服退款诈骗：不要点陌生链接"
DESC = "刷单就是诈骗！凡是要求先垫付资金的兼职都是骗局，切勿轻信。"
SOURCE = "城南区反诈中心"

LIGHT = dict(
    bg="#EDEDED",
    bar="#EDEDED",
    text="#111111",
    sub="#888888",
    bubble="#FFFFFF",
    mine="#95EC69",
    card="#FFFFFF",
    line="#E5E5E5",
    input="#F7F7F7",
    field="#FFFFFF",
)
DARK = dict(
    bg="#111111",
    bar="#1E1E1E",
    text="#D5D5D5",
    sub="#7A7A7A",
    bubble="#2C2C2C",
    mine="#3EB575",
    card="#2C2C2C",
    line="#3A3A3A",
    input="#1E1E1E",
    field="#2C2C2C",
)
AVATARS = ["#5B8FF9", "#F6BD16", "#E8684A", "#6DC8EC", "#9270CA", "#FF9D4D", "#269A99"]


def font(size: float) -> ImageFont.FreeTypeFont:
    return ImageFont.truetype(str(cjk_font_path()), max(8, round(size)))


def wrap(draw: ImageDraw.ImageDraw, text: str, f, width: float, max_lines: int) -> list[str]:
    """Greedy per-character wrap, the last line cut with … like WeChat's card titles."""
    lines, cur = [], ""
    for ch in text:
        if draw.textlength(cur + ch, font=f) > width:
            lines.append(cur)
            cur = ch
        else:
            cur += ch
    lines.append(cur)
    if len(lines) > max_lines:
        last = lines[max_lines - 1]
        while last and draw.textlength(last + "…", font=f) > width:
            last = last[:-1]
        lines = lines[: max_lines - 1] + [last + "…"]
    return lines


def screenshot(
    *, width: int, height: int, header: str, chat: list[tuple], dark: bool = False, clock: str = "9:41", seed: int = 0
) -> Image.Image:
    """chat items: ("text", name, message, mine) or ("card", name, title, mine) or ("time", label)."""
    c = DARK if dark else LIGHT
    s = width / 1080
    rnd = random.Random(seed)
    img = Image.new("RGB", (width, height), c["bg"])
    d = ImageDraw.Draw(img)
    # status bar and header (the top ~10% of the screen)
    d.rectangle([0, 0, width, 250 * s], fill=c["bar"])
    d.text((60 * s, 40 * s), clock, font=font(40 * s), fill=c["text"])
    d.text((width - 190 * s, 40 * s), "5G 87", font=font(34 * s), fill=c["text"])
    d.text((50 * s, 140 * s), "‹", font=font(80 * s), fill=c["text"])
    hf = font(50 * s)
    d.text((width / 2, 185 * s), header, font=hf, fill=c["text"], anchor="mm")
    d.text((width - 110 * s, 185 * s), "···", font=font(50 * s), fill=c["text"], anchor="mm")
    d.line([0, 250 * s, width, 250 * s], fill=c["line"], width=max(1, round(2 * s)))
    y = 290 * s
    av = 120 * s
    for item in chat:
        if item[0] == "time":
            d.text((width / 2, y + 20 * s), item[1], font=font(34 * s), fill=c["sub"], anchor="mm")
            y += 90 * s
            continue
        kind, name, body, mine = item
        color = AVATARS[rnd.randrange(len(AVATARS))]
        ax = width - 40 * s - av if mine else 40 * s
        d.rounded_rectangle([ax, y, ax + av, y + av], radius=12 * s, fill=color)
        d.text((ax + av / 2, y + av / 2), name[-1], font=font(52 * s), fill="#FFFFFF", anchor="mm")
        top = y
        if not mine:
            d.text((ax + av + 30 * s, y), name, font=font(34 * s), fill=c["sub"])
            top = y + 50 * s
        if kind == "text":
            f = font(48 * s)
            lines = wrap(d, body, f, 640 * s, 6)
            w = max(d.textlength(line, font=f) for line in lines) + 60 * s
            h = len(lines) * 68 * s + 50 * s
            bx = ax - 24 * s - w if mine else ax + av + 24 * s
            d.rounded_rectangle([bx, top, bx + w, top + h], radius=14 * s, fill=c["mine"] if mine else c["bubble"])
            for i, line in enumerate(lines):
                d.text((bx + 30 * s, top + 25 * s + i * 68 * s), line, font=f, fill="#111111" if mine else c["text"])
        else:  # forwarded article card
            w = 720 * s
            tf, df, sf = font(48 * s), font(38 * s), font(32 * s)
            tlines = wrap(d, body, tf, w - 70 * s, 2)
            dlines = wrap(d, DESC, df, w - 250 * s, 3)
            th = len(tlines) * 66 * s
            h = 40 * s + th + 20 * s + 180 * s + 30 * s + 70 * s
            bx = ax - 24 * s - w if mine else ax + av + 24 * s
            d.rounded_rectangle([bx, top, bx + w, top + h], radius=14 * s, fill=c["card"])
            for i, line in enumerate(tlines):
                d.text((bx + 35 * s, top + 35 * s + i * 66 * s), line, font=tf, fill=c["text"])
            dy = top + 40 * s + th + 20 * s
            for i, line in enumerate(dlines):
                d.text((bx + 35 * s, dy + i * 54 * s), line, font=df, fill=c["sub"])
            # thumbnail: a red shield, no text
            tx, ty = bx + w - 200 * s, dy
            d.rectangle([tx, ty, tx + 165 * s, ty + 165 * s], fill="#C62828")
            d.polygon(
                [
                    (tx + 82 * s, ty + 25 * s),
                    (tx + 135 * s, ty + 50 * s),
                    (tx + 120 * s, ty + 125 * s),
                    (tx + 82 * s, ty + 145 * s),
                    (tx + 45 * s, ty + 125 * s),
                    (tx + 30 * s, ty + 50 * s),
                ],
                fill="#FFD54F",
            )
            ly = dy + 180 * s + 20 * s
            d.line([bx + 35 * s, ly, bx + w - 35 * s, ly], fill=c["line"], width=max(1, round(2 * s)))
            d.ellipse([bx + 35 * s, ly + 20 * s, bx + 75 * s, ly + 60 * s], fill="#1AAD19")
            d.text((bx + 90 * s, ly + 18 * s), SOURCE, font=sf, fill=c["sub"])
            h = h
        y = max(y + av, top + h) + 50 * s
    # input bar
    d.rectangle([0, height - 180 * s, width, height], fill=c["input"])
    d.rounded_rectangle([150 * s, height - 150 * s, width - 290 * s, height - 60 * s], radius=12 * s, fill=c["field"])
    for cx in [70 * s, width - 210 * s, width - 80 * s]:
        d.ellipse(
            [cx - 36 * s, height - 141 * s, cx + 36 * s, height - 69 * s], outline=c["text"], width=max(1, round(4 * s))
        )
    return img


UNIT_CHAT = [
    ("time", "上午 9:12"),
    ("text", "王建国", "各位同事，今天下午三点在二楼会议室开例会，请准时参加。", False),
    ("text", "李秀英", "收到", False),
    ("text", "赵磊", "好的，会议材料我已经打印好了", False),
    ("time", "上午 9:40"),
    ("card", "张伟", TITLE, True),
    ("text", "张伟", "区里刚发的反诈预警，请大家转给家人朋友。", True),
]


def landscape(width: int, height: int) -> Image.Image:
    img = Image.new("RGB", (width, height))
    d = ImageDraw.Draw(img)
    for yy in range(height):  # sky gradient
        t = yy / height
        d.line([0, yy, width, yy], fill=(int(90 + 120 * t), int(150 + 70 * t), int(230 - 30 * t)))
    d.ellipse([width * 0.68, height * 0.1, width * 0.85, height * 0.1 + width * 0.17], fill="#FFE082")
    d.polygon(
        [
            (0, height * 0.62),
            (width * 0.3, height * 0.3),
            (width * 0.55, height * 0.6),
            (width * 0.75, height * 0.38),
            (width, height * 0.62),
        ],
        fill="#546E7A",
    )
    d.polygon(
        [(width * 0.22, height * 0.38), (width * 0.3, height * 0.3), (width * 0.38, height * 0.38)], fill="#ECEFF1"
    )
    d.rectangle([0, height * 0.62, width, height * 0.8], fill="#4FC3F7")
    d.rectangle([0, height * 0.8, width, height], fill="#7CB342")
    for x in range(40, width, 130):  # trees
        d.polygon([(x, height * 0.93), (x + 45, height * 0.78), (x + 90, height * 0.93)], fill="#2E7D32")
    return img


def save_jpeg(img: Image.Image, name: str, quality: int) -> None:
    img.save(OUT / name, "JPEG", quality=quality, optimize=True)


def save_png(img: Image.Image, name: str) -> None:
    # 256-colour palette keeps the flat UI sharp and the file small; OCR sees the same pixels as a phone PNG
    img.quantize(colors=256, method=Image.Quantize.MEDIANCUT, dither=Image.Dither.NONE).save(
        OUT / name, "PNG", optimize=True
    )


def main() -> None:
    base = dict(header="城关镇全体干部群(36)", chat=UNIT_CHAT)
    save_png(screenshot(width=1080, height=2340, **base), "unit_1080.png")
    save_jpeg(screenshot(width=720, height=1560, clock="10:02", seed=1, **base), "unit_720_q70.jpg", 70)
    save_jpeg(screenshot(width=540, height=1170, clock="10:15", seed=2, **base), "unit_540_q50.jpg", 50)
    save_jpeg(screenshot(width=1080, height=2340, dark=True, clock="21:37", seed=3, **base), "unit_dark.jpg", 80)
    long_chat = [
        ("time", "下午 2:05"),
        ("text", "陈芳", "下周一社区网格员培训，名单请各村今天报上来。", False),
        ("card", "刘洋", LONG_TITLE, True),
        ("text", "刘洋", "请大家务必转发到各自的村民群。", True),
    ]
    save_jpeg(
        screenshot(width=1080, height=2340, header="城关镇全体干部群(36)", chat=long_chat, seed=4, clock="14:07"),
        "unit_long_title.jpg",
        80,
    )
    liaison_chat = [
        ("time", "上午 9:30"),
        ("card", "区反诈中心", TITLE, False),
        ("text", "区反诈中心", "请各单位联络员转发至本单位工作群，并回复截图。", False),
        ("text", "区教育局", "收到", False),
    ]
    save_jpeg(
        screenshot(width=1080, height=2340, header="全区反诈联络员群(58)", chat=liaison_chat, seed=5, clock="9:33"),
        "liaison_group.jpg",
        80,
    )
    other_chat = [
        ("time", "上午 8:50"),
        ("text", "周敏", "反诈预警：最近冒充客服的电话很多，大家注意。", False),
        ("card", "张伟", OTHER_TITLE, True),
        ("text", "张伟", "收到，已转发反诈预警。", True),
    ]
    save_jpeg(
        screenshot(width=1080, height=2340, header="城关镇全体干部群(36)", chat=other_chat, seed=6, clock="8:55"),
        "unit_other_alert.jpg",
        80,
    )
    save_jpeg(landscape(1080, 1440), "unrelated_landscape.jpg", 75)
    # the 1080 PNG sent again by someone else: WeChat recompresses and downsizes it
    reused = Image.open(OUT / "unit_1080.png").convert("RGB").resize((828, 1794), Image.Resampling.BICUBIC)
    buf = io.BytesIO()
    reused.save(buf, "JPEG", quality=60)
    (OUT / "reused_unit_1080.jpg").write_bytes(buf.getvalue())


if __name__ == "__main__":
    main()
