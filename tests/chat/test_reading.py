"""bot.chat.reading: what counts as a confirmation, what never does, when to ask; and the labelled corpora."""

from __future__ import annotations

import pytest

from benchmarks.reading import CORPORA, score
from bot.chat.reading import Verdict, is_bare_ack, read_reply
from bot.chat.wechat_formats import group_note, is_rate_limit_notice, sysmsg, xml_quote

NAMES = ("城关镇", "东城街道", "区财政局", "区卫健局")

MUST_COUNT = [
    "已转至学校班主任群",
    "已转发卫生院职工群和村医群",
    "已转发至街道各科室及社区工作群",
    "已推送至全体教职工群",
    "已转发单位群、家长群、业主群",
    "已按通知要求转发",
    "已转发，并在周例会上提醒",
    "已转发，并要求各村转到村民群",
    "已转发，稍后补截图",
    "城关镇 已转发",
    "〔区财政局〕已转发",
    "东城街道—李强：已转",
    "已转发[玫瑰]",
    "已转发[抱拳]",
    "已转[Salute]",
    "[强]已转",
    "已转发[Strong]",
    "已转发[OK]",
    "转了哈",
    "转了",
    "发了",
    "已推",
    "#2 已转发至系统各单位",
    "＃3已转发",
    "第3条已转发",
    "@反诈助手\u2005已转发",
    "已转发 @反诈办-陈静\u2005",
    "上午已转发",
    "刚才已转",
    "不好意思，刚看到，已转发",
    "已转发，没问题",
    "已轉發",
    "已轉發至各村群",
    "已于今日9:30转发",
    "以转发",
]
MUST_NOT_COUNT = [
    "收到了",
    "已阅知",
    "好的收到",
    "马上转",
    "等下转发",
    "晚点转",
    "周一转",
    "这个要转到哪些群？",
    "已转发吗",
    "没有转",
    "不需要转发吧",
    "请各镇街尽快转发",
    "各位记得转发哦",
    "有谁还没转？",
    "转发完的请截图",
    "已转发的单位请截图",
    "已转账",
    "钱已转过去了",
    "已调岗，联络员换成张三",
    "转发显示失败",
    "转不出去",
    "👍",
    "[强]",
    "完成后回复已转发",
    "例如：城关镇已转发",
    "已转发改成已收到，刚才手滑",
    "代城关镇收到",
    "如果需要的话我们可以转",
    "准备转发时手机死机了",
    "会转的",
    "正在转发",
]
MUST_ASK = ["转发了一部分", "应该转了吧", "已转发？", "已通知各村转发", "转发", "好了"]


@pytest.mark.parametrize("text", MUST_COUNT)
def test_what_must_count(text):
    reading = read_reply(text, NAMES)
    assert reading.verdict is Verdict.YES, reading


@pytest.mark.parametrize("text", MUST_NOT_COUNT)
def test_what_must_never_count(text):
    reading = read_reply(text, NAMES)
    assert reading.verdict is not Verdict.YES, reading


@pytest.mark.parametrize("text", MUST_ASK)
def test_what_is_asked_about(text):
    reading = read_reply(text, NAMES)
    assert reading.verdict is Verdict.UNSURE, reading


def test_every_verdict_says_why_and_where():
    reading = read_reply("收到，稍后转发并截图", NAMES)
    assert reading.verdict is Verdict.NO and reading.why == "打算稍后转发" and "稍后转发" in reading.clause


@pytest.mark.parametrize(
    "text, refs, every",
    [
        ("已转发 #1 #2", (1, 2), True),
        ("#1、#2 已转发", (1, 2), True),
        ("两条都已转发", (), True),
        ("已转发 #3", (3,), False),
        ("第5条已转", (5,), False),
        ("1、2、3号预警均已转", (1, 2, 3), True),
    ],
)
def test_push_references_and_all(text, refs, every):
    reading = read_reply(text, NAMES)
    assert reading.confirmed and reading.refs == refs and reading.all_pushes is every


@pytest.mark.parametrize(
    "text, ack",
    [
        ("👍", True),
        ("[强]", True),
        ("[Strong][OK]", True),
        ("[抱拳]🙏", True),
        ("[流泪]", False),
        ("👎", False),
        ("收到", False),
        ("", False),
    ],
)
def test_a_bare_face_under_a_quote(text, ack):
    assert is_bare_ack(text) is ack


def test_no_corpus_has_a_non_confirmation_counted_and_the_dev_corpus_is_read_fully():
    # A guard for changes to the reader: every corpus in tests/data/confirmations stays free of false counts.
    for path in sorted(CORPORA.glob("*.tsv")):
        result = score(path)
        assert result.n("no", "yes") == 0, (path.name, [e for e in result.errors if e[0] == "no"])
        assert result.recall >= 0.95, (path.name, result.recall)
    assert score(CORPORA / "dev.tsv").recall == 1.0


def test_group_note_title_and_xml_forms():
    title = "#接龙\n#3 转发情况\n\n1. 城关镇 王芳 已转发\n2. 东城街道 李强 已转发，\n并提醒各社区"
    note = group_note(title)
    assert note is not None and note.header == "#3 转发情况" and not note.has_authors
    assert [(e.number, e.text) for e in note.entries] == [
        (1, "城关镇 王芳 已转发"),
        (2, "东城街道 李强 已转发， 并提醒各社区"),
    ]
    assert group_note("@某人 打卡#接龙\n1. 甲") is not None and group_note("#Group Note\n1. a") is not None
    assert group_note("今天的接龙大家别忘了") is None
    emoji_title = "#接龙\n😀标题\n1. 城关镇 已转发\n2. 区财政局 已转发"
    start2 = len(emoji_title[: emoji_title.index("2.")].encode("utf-16-le")) // 2  # UTF-16 units: 😀 counts 2
    xml = (
        f"<msg><appmsg><title>{emoji_title}</title><type>53</type><extinfo><solitaire_info>"
        f"<i><u>wxid_a</u><t>1</t><r>10-8</r></i><i><u>wxid_b</u><t>2</t><r>{start2}-9</r></i>"
        "</solitaire_info></extinfo></appmsg></msg>"
    )
    note = group_note(xml)
    assert note.has_authors and [e.author_id for e in note.entries] == ["wxid_a", "wxid_b"]


def test_xml_quote_sysmsg_and_rate_limit():
    quote = xml_quote(
        "<msg><appmsg><title>已转发</title><type>57</type><refermsg><type>1</type>"
        "<displayname>反诈助手</displayname><chatusr>bot</chatusr>"
        "<content>【反诈预警 #4】标题</content></refermsg></appmsg></msg>"
    )
    assert quote is not None and quote.reply == "已转发" and "#4" in quote.quoted and quote.quoted_id == "bot"
    assert xml_quote("<msg><appmsg><title>x</title><type>5</type></appmsg></msg>") is None
    recall = sysmsg('<sysmsg type="revokemsg"><revokemsg><newmsgid>5007</newmsgid></revokemsg></sysmsg>')
    assert recall.kind == "revokemsg" and recall.recalled_id == "5007"
    assert sysmsg('<sysmsg type="pat"><pat></pat></sysmsg>').kind == "pat"
    assert is_rate_limit_notice("发送消息过于频繁，可稍后再试。") and is_rate_limit_notice("操作过于频繁，请稍后再试")
    assert not is_rate_limit_notice("已转发")
