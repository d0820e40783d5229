"""Draws 12 phone screenshots the OCR check was never built or tuned on, for benchmarks/ocr_bench.py.

Run from the repository root: `python benchmarks/data/screenshots_unseen/make_unseen.py`.
Written independently of tests/data/screenshots/make_screenshots.py: other phone sizes (720x1600 up to
1440x3200), iOS- and Android-style status bars, other titles, group names and chats, JPEG qualities from 55 to
92, light and dark themes, cards placed high and low, and negatives (the liaison group itself, another alert's
card, a chat without a card, a news app page). Layout sizes are in dp and scaled by width / 360 like Android.
labels.tsv: file, expected verdict (status), the push title to look for, the liaison group's name.
These images are for measuring time and memory; thresholds are not to be tuned on them.
"""

from __future__ import annotations

import random
from pathlib import Path

from PIL import Image, ImageDraw, ImageFilter, ImageFont

from bot.reports.render import cjk_font_path

OUT = Path(__file__).resolve().parent
LIAISON = "高新区反诈联络员工作群"

THEMES = {
    "light": dict(
        bg="#F2F2F2",
        bar="#F7F7F7",
        ink="#1A1A1A",
        dim="#8C8C8C",
        left="#FFFFFF",
        right="#A9EA7A",
        card="#FFFFFF",
        rule="#DADADA",
        foot="#F7F7F7",
        box="#FFFFFF",
        right_ink="#1A1A1A",
    ),
    "dark": dict(
        bg="#181818",
        bar="#202020",
        ink="#E0E0E0",
        dim="#6F6F6F",
        left="#2B2B2B",
        right="#2E8B57",
        card="#262626",
        rule="#333333",
        foot="#202020",
        box="#2B2B2B",
        right_ink="#F0F0F0",
    ),
}
FACES = ["#4E79A7", "#F28E2B", "#E15759", "#76B7B2", "#59A14F", "#EDC948", "#B07AA1", "#9C755F"]


def font(px: float) -> ImageFont.FreeTypeFont:
    return ImageFont.truetype(str(cjk_font_path()), max(9, round(px)))


def lines_of(d: ImageDraw.ImageDraw, text: str, f, width: float, most: int) -> list[str]:
    out, cur = [], ""
    for ch in text:
        if cur and d.textlength(cur + ch, font=f) > width:
            out.append(cur)
            cur = ch
        else:
            cur += ch
    out.append(cur)
    if len(out) > most:
        tail = out[most - 1]
        while tail and d.textlength(tail + "...", font=f) > width:
            tail = tail[:-1]
        out = out[: most - 1] + [tail + "..."]
    return out


class Phone:
    def __init__(self, width: int, height: int, theme: str, *, ios: bool, seed: int):
        self.w, self.h, self.c = width, height, THEMES[theme]
        self.u = width / 360  # one dp
        self.ios = ios
        self.rnd = random.Random(seed)
        self.img = Image.new("RGB", (width, height), self.c["bg"])
        self.d = ImageDraw.Draw(self.img)

    def status_bar(self, clock: str, battery: int) -> float:
        u, d, c = self.u, self.d, self.c
        bar = (44 if self.ios else 28) * u
        d.rectangle([0, 0, self.w, bar], fill=c["bar"])
        if self.ios:
            d.text((32 * u, bar / 2), clock, font=font(15 * u), fill=c["ink"], anchor="lm")
        else:
            d.text((14 * u, bar / 2), clock, font=font(12 * u), fill=c["ink"], anchor="lm")
            d.text((60 * u, bar / 2), "微信", font=font(10 * u), fill=c["dim"], anchor="lm")
        # signal bars, a wifi fan, the battery with its percentage
        x = self.w - 110 * u
        for i in range(4):
            d.rectangle(
                [x + i * 5 * u, bar / 2 + (3 - i) * 2 * u - 3 * u, x + i * 5 * u + 3 * u, bar / 2 + 5 * u],
                fill=c["ink"],
            )
        d.pieslice([x + 24 * u, bar / 2 - 6 * u, x + 40 * u, bar / 2 + 10 * u], 225, 315, fill=c["ink"])
        d.text((x + 48 * u, bar / 2), f"{battery}%", font=font(10 * u), fill=c["ink"], anchor="lm")
        bx = self.w - 36 * u
        d.rounded_rectangle(
            [bx, bar / 2 - 5 * u, bx + 22 * u, bar / 2 + 5 * u], radius=2 * u, outline=c["ink"], width=max(1, round(u))
        )
        d.rectangle([bx + 2 * u, bar / 2 - 3 * u, bx + 2 * u + 18 * u * battery / 100, bar / 2 + 3 * u], fill=c["ink"])
        return bar

    def nav(self, top: float, title: str) -> float:
        u, d, c = self.u, self.d, self.c
        height = 46 * u
        d.rectangle([0, top, self.w, top + height], fill=c["bar"])
        mid = top + height / 2
        d.line([(22 * u, mid - 8 * u), (14 * u, mid), (22 * u, mid + 8 * u)], fill=c["ink"], width=round(2 * u))
        d.text((self.w / 2, mid), title, font=font(16 * u), fill=c["ink"], anchor="mm")
        for i in range(3):
            cx = self.w - 30 * u + i * 7 * u
            d.ellipse([cx - 1.6 * u, mid - 1.6 * u, cx + 1.6 * u, mid + 1.6 * u], fill=c["ink"])
        d.line([0, top + height, self.w, top + height], fill=c["rule"], width=max(1, round(u / 2)))
        return top + height

    def footer(self) -> float:
        u, d, c = self.u, self.d, self.c
        height = 56 * u
        top = self.h - height
        d.rectangle([0, top, self.w, self.h], fill=c["foot"])
        d.rounded_rectangle([48 * u, top + 9 * u, self.w - 90 * u, top + 45 * u], radius=5 * u, fill=c["box"])
        for cx in (24 * u, self.w - 66 * u, self.w - 26 * u):
            d.ellipse(
                [cx - 13 * u, top + 14 * u, cx + 13 * u, top + 40 * u], outline=c["ink"], width=max(1, round(1.4 * u))
            )
        return top

    def avatar(self, x: float, y: float, name: str) -> None:
        u = self.u
        self.d.rounded_rectangle([x, y, x + 40 * u, y + 40 * u], radius=4 * u, fill=self.rnd.choice(FACES))
        self.d.text((x + 20 * u, y + 20 * u), name[0], font=font(17 * u), fill="#FFFFFF", anchor="mm")

    def stamp(self, y: float, text: str) -> float:
        self.d.text((self.w / 2, y + 10 * self.u), text, font=font(11 * self.u), fill=self.c["dim"], anchor="mm")
        return y + 30 * self.u

    def bubble(self, y: float, name: str, text: str, mine: bool) -> float:
        u, d, c = self.u, self.d, self.c
        ax = self.w - 52 * u if mine else 12 * u
        self.avatar(ax, y, name)
        top = y
        if not mine:
            d.text((ax + 50 * u, y - 2 * u), name, font=font(11 * u), fill=c["dim"])
            top = y + 16 * u
        f = font(15.5 * u)
        rows = lines_of(d, text, f, 230 * u, 8)
        w = max(d.textlength(r, font=f) for r in rows) + 22 * u
        h = len(rows) * 22 * u + 18 * u
        x = ax - 8 * u - w if mine else ax + 48 * u
        d.rounded_rectangle([x, top, x + w, top + h], radius=5 * u, fill=c["right" if mine else "left"])
        for i, r in enumerate(rows):
            d.text((x + 11 * u, top + 9 * u + i * 22 * u), r, font=f, fill=c["right_ink" if mine else "ink"])
        return max(y + 40 * u, top + h) + 16 * u

    def card(self, y: float, name: str, title: str, blurb: str, source: str, mine: bool) -> float:
        u, d, c = self.u, self.d, self.c
        ax = self.w - 52 * u if mine else 12 * u
        self.avatar(ax, y, name)
        top = y
        if not mine:
            d.text((ax + 50 * u, y - 2 * u), name, font=font(11 * u), fill=c["dim"])
            top = y + 16 * u
        w = 246 * u
        x = ax - 8 * u - w if mine else ax + 48 * u
        tf, bf = font(15.5 * u), font(12.5 * u)
        trows = lines_of(d, title, tf, w - 24 * u, 2)
        brows = lines_of(d, blurb, bf, w - 84 * u, 3)
        th = len(trows) * 22 * u
        h = 12 * u + th + 8 * u + 56 * u + 10 * u + 26 * u
        d.rounded_rectangle([x, top, x + w, top + h], radius=5 * u, fill=c["card"])
        for i, r in enumerate(trows):
            d.text((x + 12 * u, top + 12 * u + i * 22 * u), r, font=tf, fill=c["ink"])
        by = top + 12 * u + th + 8 * u
        for i, r in enumerate(brows):
            d.text((x + 12 * u, by + i * 18 * u), r, font=bf, fill=c["dim"])
        # thumbnail: a blue badge with a white bar, no text in it
        tx = x + w - 66 * u
        d.rectangle([tx, by, tx + 54 * u, by + 54 * u], fill="#1F5FAF")
        d.ellipse([tx + 12 * u, by + 8 * u, tx + 42 * u, by + 38 * u], fill="#FFFFFF")
        d.rectangle([tx + 8 * u, by + 42 * u, tx + 46 * u, by + 47 * u], fill="#FFFFFF")
        ly = by + 56 * u + 10 * u
        d.line([x + 12 * u, ly, x + w - 12 * u, ly], fill=c["rule"], width=max(1, round(u / 2)))
        d.rectangle([x + 12 * u, ly + 7 * u, x + 24 * u, ly + 19 * u], fill="#07C160")
        d.text((x + 30 * u, ly + 13 * u), source, font=font(10.5 * u), fill=c["dim"], anchor="lm")
        return max(y + 40 * u, top + h) + 16 * u


def chat_shot(width, height, theme, *, ios, seed, clock, battery, group, items) -> Image.Image:
    """A group chat scrolled to its end: the oldest items are left out until the newest one fits."""
    for first in range(len(items)):
        img, fits = _chat(width, height, theme, ios, seed, clock, battery, group, items[first:])
        if fits:
            return img
    return img


def _chat(width, height, theme, ios, seed, clock, battery, group, items) -> tuple[Image.Image, bool]:
    p = Phone(width, height, theme, ios=ios, seed=seed)
    y = p.nav(p.status_bar(clock, battery), group) + 14 * p.u
    bottom = p.footer()
    for item in items:
        kind = item[0]
        if kind == "time":
            y = p.stamp(y, item[1])
        elif kind == "msg":
            y = p.bubble(y, item[1], item[2], item[3])
        else:
            y = p.card(y, item[1], item[2], item[3], item[4], item[5])
    p.footer()  # drawn again over anything that ran under it
    return p.img, y <= bottom


def news_page(width: int, height: int, seed: int) -> Image.Image:
    """A news app's feed, not a chat: the kind of picture a liaison sends by mistake."""
    rnd = random.Random(seed)
    img = Image.new("RGB", (width, height), "#FFFFFF")
    d = ImageDraw.Draw(img)
    u = width / 360
    d.rectangle([0, 0, width, 90 * u], fill="#D7263D")
    d.text((16 * u, 50 * u), "本地新闻", font=font(20 * u), fill="#FFFFFF", anchor="lm")
    y = 104 * u
    heads = [
        "城区新增三处口袋公园，周末开放",
        "地铁五号线南延段本月底试运营",
        "全市高考考点交通管制公告发布",
        "秋季流感高发，专家提醒及时接种",
        "老旧小区加装电梯项目进展顺利",
        "本周天气晴好，昼夜温差较大",
    ]
    for head in heads:
        shade = tuple(rnd.randrange(60, 200) for _ in range(3))
        photo = Image.new("RGB", (round(110 * u), round(76 * u)), shade)
        pd = ImageDraw.Draw(photo)
        for _ in range(12):
            cx, cy = rnd.randrange(photo.width), rnd.randrange(photo.height)
            r = rnd.randrange(4, 20)
            pd.ellipse([cx - r, cy - r, cx + r, cy + r], fill=tuple(rnd.randrange(256) for _ in range(3)))
        img.paste(photo.filter(ImageFilter.GaussianBlur(2 * u)), (round(width - 126 * u), round(y)))
        for i, r in enumerate(lines_of(d, head, font(16 * u), width - 160 * u, 2)):
            d.text((16 * u, y + 4 * u + i * 23 * u), r, font=font(16 * u), fill="#222222")
        d.text(
            (16 * u, y + 60 * u),
            f"{rnd.randrange(2, 90)}评论  {rnd.randrange(1, 12)}小时前",
            font=font(11 * u),
            fill="#999999",
        )
        d.line([16 * u, y + 86 * u, width - 16 * u, y + 86 * u], fill="#EEEEEE", width=max(1, round(u / 2)))
        y += 96 * u
    return img


FRAUD_CALL = "谨防冒充公检法诈骗：公安机关不会通过电话办案"
INVEST = "警惕虚假投资理财：所谓“稳赚不赔”都是陷阱"
LOAN = "小心“注销校园贷”骗局，接到此类电话请直接挂断"
GAME = "未成年人游戏充值退款诈骗高发，家长请提醒孩子不要添加陌生客服"
OTHER = "春节前后网购高峰，谨防虚假物流理赔诈骗"
BLURB = "民警提示：凡是要求转账到“安全账户”的都是诈骗，遇到可疑情况请拨打96110咨询。"
SOURCE = "高新区公安分局"

CHATS = {
    "office": [
        ("time", "昨天 17:20"),
        ("msg", "刘主任", "明天上午的安全检查请各科室提前准备好台账", False),
        ("msg", "陈静", "好的收到", False),
        ("time", "08:52"),
        ("msg", "周海", "今天食堂中午有饺子", False),
    ],
    "village": [
        ("time", "星期二 19:03"),
        ("msg", "何大姐", "广场舞今晚照常吗？", False),
        ("msg", "吴书记", "照常，七点半开始，注意安全", False),
        ("msg", "黄师傅", "好的", False),
    ],
    "school": [
        ("time", "10:15"),
        ("msg", "郑老师", "各位家长，下周一开始冬季作息时间，早上八点到校。", False),
        ("msg", "林妈妈", "收到，谢谢老师", False),
    ],
}


def positive(items: str, title: str, who: str, *, late: bool = False) -> list[tuple]:
    base = list(CHATS[items])
    card = [
        ("time", "11:06"),
        ("card", who, title, BLURB, SOURCE, True),
        ("msg", who, "请大家认真阅读，转告家人。", True),
    ]
    if late:  # the card low in the screen, after a longer chat
        return base + base[1:] + card
    return base + card


SHOTS = [
    # name, size, theme, ios, jpeg quality (None = PNG), group in the header, chat, title the push has, verdict
    (
        "u01_1080x2400_light.png",
        (1080, 2400),
        "light",
        False,
        None,
        "区市场监管局办公室(23)",
        positive("office", FRAUD_CALL, "马晓燕"),
        FRAUD_CALL,
        "已核验",
    ),
    (
        "u02_1170x2532_ios_q85.jpg",
        (1170, 2532),
        "light",
        True,
        85,
        "锦绣花园业主群(312)",
        positive("village", INVEST, "杨光"),
        INVEST,
        "已核验",
    ),
    (
        "u03_720x1600_dark_q60.jpg",
        (720, 1600),
        "dark",
        False,
        60,
        "第三小学五年级家长群(48)",
        positive("school", LOAN, "孙红"),
        LOAN,
        "已核验",
    ),
    (
        "u04_1440x3200_light_q90.jpg",
        (1440, 3200),
        "light",
        False,
        90,
        "南湖街道网格员群(67)",
        positive("village", GAME, "唐敏", late=True),
        GAME,
        "已核验",
    ),
    (
        "u05_1080x2340_dark.png",
        (1080, 2340),
        "dark",
        False,
        None,
        "区卫健委综合科(19)",
        positive("office", INVEST, "许文", late=True),
        INVEST,
        "已核验",
    ),
    (
        "u06_1242x2688_ios_q75.jpg",
        (1242, 2688),
        "light",
        True,
        75,
        "城投集团党支部(31)",
        positive("office", GAME, "邓华"),
        GAME,
        "已核验",
    ),
    (
        "u07_750x1334_ios_q80.jpg",
        (750, 1334),
        "light",
        True,
        80,
        "金桥村村民群(156)",
        positive("village", FRAUD_CALL, "罗强"),
        FRAUD_CALL,
        "已核验",
    ),
    (
        "u08_1440x3120_dark_q70.jpg",
        (1440, 3120),
        "dark",
        False,
        70,
        "实验中学教职工群(88)",
        positive("school", LOAN, "谢婷"),
        LOAN,
        "已核验",
    ),
    # negatives
    (
        "n01_1080x2400_liaison.jpg",
        (1080, 2400),
        "light",
        False,
        88,
        LIAISON,
        positive("office", FRAUD_CALL, "马晓燕"),
        FRAUD_CALL,
        "存疑",
    ),
    (
        "n02_1170x2532_other_alert_q92.jpg",
        (1170, 2532),
        "dark",
        True,
        92,
        "区交通运输局(27)",
        positive("office", OTHER, "冯涛"),
        INVEST,
        "存疑",
    ),
    (
        "n03_720x1600_no_card_q55.jpg",
        (720, 1600),
        "light",
        False,
        55,
        "幸福里社区居民群(203)",
        CHATS["village"] + CHATS["school"][1:] + [("msg", "何大姐", "反诈宣传材料放在居委会了，大家有空来拿", False)],
        LOAN,
        "存疑",
    ),
    ("n04_1440x3200_news_q80.jpg", (1440, 3200), None, False, 80, "", [], GAME, "存疑"),
]


def main() -> None:
    rows = ["file\tverdict\ttitle\tgroup_name"]
    for i, (name, (w, h), theme, ios, quality, group, items, title, verdict) in enumerate(SHOTS):
        if theme is None:
            img = news_page(w, h, seed=i)
        else:
            img = chat_shot(
                w,
                h,
                theme,
                ios=ios,
                seed=100 + i,
                clock=f"{9 + i % 8}:{(17 * i) % 60:02d}",
                battery=40 + 5 * i,
                group=group,
                items=items,
            )
        path = OUT / name
        if quality is None:
            img.save(path, "PNG", optimize=True)
        else:
            img.save(path, "JPEG", quality=quality)
        rows.append(f"{name}\t{verdict}\t{title}\t{LIAISON}")
        print(f"{name}: {w}x{h}, {path.stat().st_size // 1024} KB")
    (OUT / "labels.tsv").write_text("\n".join(rows) + "\n", encoding="utf-8")


if __name__ == "__main__":
    main()
