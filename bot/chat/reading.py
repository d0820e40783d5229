"""Reading what liaisons write: is a reply a confirmation that the unit relayed a push?

The reply is normalised (traditional characters, WeChat face codes, @mentions, push numbers, names, times and
quoted phrases taken out), cut into clauses at punctuation and spaces, and each clause is read on its own:
a relay verb (转发, 转, 发, 推送, 分享, 传达...) made complete (已…, …了, …好, …完毕) is a confirmation; the
same verb under a negation, a plan, a question, an instruction to others, money or a staff change is not.
The clauses then decide together: `已转发，并要求各村转到村民群` counts; `已转发？` and `只转了职工群，家长群还没转`
are unsure (the bot asks); `收到，稍后转发` does not count. Every verdict carries the clause and the rule that
decided it, so a person can see why a reply counted.
"""

from __future__ import annotations

import enum
import re
from dataclasses import dataclass

from bot.textnorm import clean

MAX_INPUT = 2000  # cut before any regex runs
# A reply longer than this is a report or an article, not a confirmation (a long report with 已转发 is asked about).
MAX_REPLY = 200


# The `why` of a reply that confirms something, but perhaps an earlier push or other content (刷单返利那条已转):
# the chat layer may still match it to a push by its title.
OTHER_CONTENT = "说的可能是别的内容或上一期"


class Verdict(str, enum.Enum):
    YES = "yes"  # a confirmation: count it
    UNSURE = "unsure"  # about relaying, but neither clearly yes nor no: ask the liaison
    NO = "no"  # about relaying, and clearly not a confirmation (a plan, a question, a negation...)
    UNRELATED = "unrelated"  # not about relaying at all


@dataclass(frozen=True)
class Reading:
    verdict: Verdict
    why: str  # the rule that decided, in words a person can check
    clause: str = ""  # the part of the reply that decided
    refs: tuple[int, ...] = ()  # push numbers the reply names (#3, ＃3, 第3条, 3号预警)
    all_pushes: bool = False  # 两条都已转发, 以上均已转发: every push the unit owes

    @property
    def confirmed(self) -> bool:
        return self.verdict is Verdict.YES


# ---- normalisation -----------------------------------------------------------------------------

# Traditional forms of the characters the reader looks at (it reads its own vocabulary, not all of Chinese).
_T2S_PAIRS = (
    "轉转 發发 經经 傳传 達达 給给 進进 羣群 為为 們们 單单 員员 畢毕 時时 間间 還还 沒没 請请 記记 這这 個个 說说 "
    "問问 嗎吗 麼么 後后 準准 報报 載载 區区 鎮镇 與与 條条 號号 預预 備备 過过 處处 將将 動动 會会 對对 長长 學学 "
    "關关 體体 職职 係系 統统 網网 絡络 讀读 閱阅 馬马 點点 兒儿 於于 聽听 見见 剛刚 纔才 帳账 錢钱 調调 崗岗 換换 "
    "敗败 顯显 謝谢 應应 該该 類类 據据 領领 導导 確确 認认 囉啰 嘍喽 補补 幫帮 務务 盡尽 遲迟 週周 級级 資资 費费 "
    "紅红 財财 聯联 幹干 標标 戶户 廳厅 視视 頻频 內内 從从 樣样 讓让 現现 訊讯 誤误 開开 課课 園园 醫医 護护 銀银 "
    "門门 轄辖 張张 貼贴 夥伙 塊块 帶带 啟启 稱称 滿满 權权 無无 須须 這这 裡里 邊边 節节 鐘钟 幾几 兩两 氣气 "
    "設设 實实 樓楼 訂订 賬账 轉转 驗验 題题 傳传 屆届 總总 組组 織织 區区 點点 覽览 圖图 錄录 麗丽 寫写 筆笔"
)
_T2S = {ord(p[0]): p[1] for p in _T2S_PAIRS.split()}

# Typing slips seen on phones, fixed before reading: 以转发 (以 for 已), 专发/赚发/转法 (wrong character).
_TYPOS = (
    ("己转", "已转"),
    ("己发", "已发"),
    ("依转", "已转"),
    ("以发", "已发"),
    ("以推", "已推"),
    ("专发", "转发"),
    ("赚发", "转发"),
    ("转法", "转发"),
    ("已专", "已转"),
    ("已经转发", "已转发"),
    ("已转化", "已转发"),
    ("轉晒", "转晒"),
)

_FACE = re.compile(r"\[[^\[\]\s]{1,12}\]")  # WeChat faces: [强] [Strong] [抱拳] [Salute] [OK]
_MENTION = re.compile(r"@[^\s\u2005@，,。：:！!？?]{1,40}[\s\u2005]")  # @Name followed by WeChat's U+2005 or a space
_QUOTED = re.compile(r"[“\"『「][^”\"』」]{0,30}[”\"』」]")  # 回复“已转发”即可: a phrase quoted is not said
_TIME = re.compile(r"\d{1,2}\s*[:：点时]\s*\d{1,2}分?|\d{1,2}\s*[点时]半?")
# Push references: #3 ＃3 (NFKC makes ＃ #), 第3条, 3号预警, 预警3, 1、2、3号预警.
_REF_HASH = re.compile(r"#\s*(\d{1,7})")
_REF_ORDINAL = re.compile(r"第\s*(\d{1,4}|[一二三四五六七八九十]{1,3})\s*条")
_REF_LIST = re.compile(r"((?:\d{1,4}\s*[、,，和及与]\s*){0,9}\d{1,4})\s*号\s*(?:预警|推送|通知)?")
_REF_AFTER = re.compile(r"(?:预警|推送)\s*(\d{1,4})(?!\d)")
_SPACED = re.compile(r"(?<!\S)[\u4e00-\u9fff](?: [\u4e00-\u9fff]){1,5}(?!\S)")
_CN_DIGITS = {c: i for i, c in enumerate("零一二三四五六七八九十")}

# Phrases that carry a negative character but are only politeness.
_POLITE = re.compile(
    r"没有漏|没漏|冇漏|无遗漏|没有遗漏|不好意思|没问题|没事|没关系|没毛病|不客气|不用谢|不辛苦|不错|没得说|不麻烦|没啥问题|毫无问题|无误"
)

# ---- clause reading ----------------------------------------------------------------------------

# A relay verb, with the continuations that make the same character mean something else left out:
# 转账 (money), 转岗 (staff), 发现, 推迟, 传染...
_VERB = (
    r"(?:转发|转载|转达|补发|补上|群发|下发|扩散|转出去|[转发]起走|置顶(?=.{0,8}群)|(?<=群)\S{0,3}覆盖|弄到(?=.{0,6}群)|同步|丢(?=.{0,6}群)|甩(?=.{0,6}群)|fwd|转(?![账帐岗正移交告入出变换型身向为成让租卖款钱塘角弯机盘化接述\d])"
    r"|发送|发布|发(?![现生烧言票放工展起愁改誓挥表热音病动明达扬育财薪钱红包])"
    r"|推送|推(?![迟后动荐广进辞托测算开])|分享|传达|(?<!宣)传(?![染说闻真统])|forward(?:ed)?|shared|reposted)"
)
_VERB_RE = re.compile(_VERB)
# Words that make a relay verb complete: before it (已…), or after it (…了, …好, …完毕).
_DONE_BEFORE = re.compile(r"已|早就|早都|刚刚?|刚才|都已|均已|进行了|做了")
# Strong: 已…, …了/啦/过; weak (a result, which a promise can have too: 一定转到位): …好/完/毕/到位/的.
_DONE_AFTER = re.compile(rf"{_VERB}(?:[^，]{{0,12}}?)(?:了|啦|咯|喽|嘞|过|咗|晒)|forwarded|shared|reposted|done")
_DONE_WEAK = re.compile(rf"{_VERB}(?:[^，]{{0,12}}?)(?:好|完|毕|到位|成功|出去|完成)|{_VERB}的$|完成转发|落实转发")
_NEGATION = re.compile(r"没|未|不|别|无法|忘|尚未|还没|无需|甭")
_FAILURE = re.compile(
    r"(?<!\d)0个|零个|撤回|寂寞|漏转|漏发|错|失败|不了|不出|不成|不上|不过去|不动|打不开|失效|看不了|没反应|报错|故障|被限|频繁|转不|发不"
)
# A clause without a verb that still says part was not relayed (今天的还没) or could not be (家长群没权限).
_ELLIPTIC_NEG = re.compile(
    r"(?:还没有?|尚未|没有|未)$|还没(?:转|发|弄|做|推|有)|来不及|没来得及|漏(?![报回])|要等|待开放|开放权限|失败|撤回|被删|寂寞|没权限|没有权限|权限不够|被禁言|发不出|转不出|没发出"
)
# A promise or plan: it overrides a 了 later in the clause (准备转发时手机死机了), not an 已.
_PLAN = re.compile(
    r"马上|立即|立刻|立马|等下|等会|等一下|待会|一会|稍后|晚点|晚些|这就|准备|打算|计划|(?<!已)将(?!近)|会(?![议上场])"
    r"|要(?!求)|去(?!年)|再(?!次)|争取|回头|抓紧|尽快|一定|保证|正在"
)
# A time that makes a bare verb a plan (明天转) but is also said of the past (下午转了).
_LATER = re.compile(r"明天|明早|明日|后天|周[一二三四五六日天末]|星期|下周|下班|下午|晚上|今晚|之后|随后|先|在|后$|就$")
_LATER_ALONE = re.compile(r"(?:稍后|晚点|晚些|等下|等会|待会|一会|下午|晚上|明天|明早|今晚|回头)(?:再?[转发]|再说|补)?")
# Someone else (们, 各村) relaying next: 由社区再转居民群, 书记们再往村民群发. A delegation, not a doubt.
_OTHERS = re.compile(r"们|各|由|班主任|老师|书记|网格员|村干部|科(?!室)|处室|部门")
# The unit had someone else do it (已通知各村转发, 让小王转了): likely, but ask.
_DELEGATE = re.compile(r"通知(?!到位)|安排|让|叫|交给|委托")
# Relayed to one person or to 朋友圈, not into the unit's groups: ask.
_PERSON_TARGET = re.compile(
    r"公众号|反诈办|家族|家庭|亲友|领导|主任|书记|局长|校长|科长|办公室|我妈|我爸|家人|老婆|老公|朋友"
)
_GROUP_TARGET = re.compile(r"群|各|(?<!我)们|全体|所有|每|大家")
# 复制粘贴发的，可以吗？: done, but asking whether it counts.
_DOES_IT_COUNT = re.compile(r"(?:可以|行|对|算|合格|符合)(?:吗|不|么|嘛)")
# Relaying redone after a failure: 前面失败了，现在已重新转发成功.
_REDONE = re.compile(r"重新|现在|现已|已补|补转|终于|再次|其实|实际")
# A reply that only says something is done, without saying what: ask.
_GENERIC_DONE = re.compile(
    r"(?:已经?|都)?(?:搞定|好了|处理|落实|办好|弄好|整好|搞好|搞归一|归一|搞掂|妥|办|完成)(?:了|啦|咯|喽|晒)?|ok了|搞定晒"
)
# The office describing the reply it wants: 例如：城关镇已转发, 回复格式：XX单位已转发至XX群.
# Or tallying others (还差四家, 截至目前): the office's count, not a unit's confirmation.
_EXAMPLE = re.compile(
    r"例[：:]|未回复[：:]|截至|截止到|模板|格式|例如|比如|参照|示例|样例|如下回复|还差.{0,3}[家个]|还剩.{0,3}[家个]|截至目前|截止目前"
)
# Said of others (有单位转发了旧版本) or of an earlier push (上期转了): not this unit's relay of this push.
_OTHERS_DID = re.compile(r"有单位|有人|有的单位|个别单位|部分单位|别的单位|其他单位|几个单位|很多单位|不少单位")
_EARLIER_PUSH = re.compile(
    r"那期|上周|这个月|上个月|上期|上次|(?<!晚)上回(?![去来家])|之前那|以前|昨天那|昨天的|前一期|上一条|上条|上一期"
)
# A reply taken back (已转发改成已收到，刚才手滑): never counted.
_RETRACTED = re.compile(r"打错|手滑|回错|说错|改成|改为|更正|发错|不算")
_TYPO_YI = re.compile(r"(?<![可所难得足予加用之])以(?=转|发|推)")  # 以转发 typed for 已转发, not 可以转
# Other homophones of 已 that voice input and pinyin keyboards give, when nothing follows the verb: 一转发, 亿转发.
_HOMOPHONE_YI = re.compile(
    r"(?:^|(?<=[\s，,。.!！]))[一亿依意乙易义](?=(?:转发|转|发|推送|推)(?:了|啦)?(?:[\s，,。.!！?？]|$))"
)
_DONE_EN = re.compile(r"\bdone\b")  # read as 搞定: a question, unless it says how many groups
_PINYIN = re.compile(
    r"\byi\s*(?:jing\s*)?zhuan\s*(?:fa|le)?\b|\byzf\b|\bzhuan\s*le\b|\balready\s*(?:fwd|forwarded)\b"
    r"|\bfwd\s*(?:done|ok|了)|\bforward(?:ed)?\s*done\b|\bdone\s*fwd\b"
)
# A report with numbers reached: 转发群数：6；覆盖人数：约900人, 转发3个群，触达员工156人.
_REACH = re.compile(r"群数|覆盖.{0,4}\d|触达|\d+\s*个群|(?:\d+|[一二三四五六七八九十两]+)个(?:\S{0,3})群")
_CHECKED = re.compile(r"(群|#\s*\d{1,7})\s*[✔✅☑✓√]")
_PROGRESSIVE = re.compile(rf"(?:正在|(?<!现)在){_VERB}|{_VERB}中$")
_QUESTION_WORD = re.compile(
    r"(\w)[不没]\1|吗|么|是否|要不要|需不需要|用不用|能否|可否|怎么|怎样|如何|咋|哪|啥|什么|谁|了没|没有$|不$"
)
_INSTRUCTION = re.compile(
    r"请|各位|大家|各单位|各镇街|(?<!我)记得|务必|麻烦|帮忙|一定要|要求|提醒|督促|通知各|让|叫|给我|发我|由"
)
_REPLY_META = re.compile(rf"(?:回复|答复|回|写|填|打|报|备注|留言)(?:已|{_VERB})")
# 完成后回复已转发, 请回复：单位+已转发: the office naming the reply it wants.
_ASKED_REPLY = re.compile(r"(?:请|后|再|然后|并)(?:回复|答复)[^，,。；;！!？?\n]*")
# Other campaigns relayed in the same groups: 防汛通知已转各群 is not this alert.
_OTHER_CAMPAIGN = re.compile(
    r"防汛|汛期|疫苗|接种|会议|选举|换届|溺水|暑期|寒假|安全告|告家长书|总结|消防|防火|体检|招聘|投票|抽奖"
    r"|app下载"
)
_THIS_PUSH = re.compile(r"这条|这期|本期|这次")
_BESIDES = re.compile(r"另外|顺便|也|另|还有")
# The verb is about something else: money (转账, 转200), a contact card (推名片), mail, a test to the file helper.
_MONEY = re.compile(
    r"钱|\d+元|\d+块|元钱|账|帐|货款|汇款|付款|打款|欠款|款项|红包|利是|费|工资|押金|报销|资金|金额|转给你|发给你|发你|给你"
    r"|转\d|名片|邮箱|邮件|文件传输助手|测试|值班表|表格|手机号|号码|电话|关系|材料|档案|简历|名单|报表|户口|好友"
    r"|(?:转|交|报)给?(?:派出所|民警|警察|110)|转学(?![校员生]|.{0,3}群)|转院|转诊|转介|病人|学生"
    r"|下载链接|app下载|app推广|推广通知|活动方案|方案"
)
_STAFF = re.compile(
    r"调岗|转岗|岗位|换岗|离岗|到岗|新岗|调动|调走|调到|调去|调入|换成|换人|变更|交接|离职|新同事|接替|退休了|转到.{0,10}工作(?!群)|联络员"
)
_HEDGE = re.compile(
    r"一半|应该|好像|可能|大概|估计|似乎|听说|据说|同事说|说是|说他们|说已|你|他们|他|她|吧$|类似|部分|只|仅|个别|有的|有些|一些|我记得"
)
_NOUN = re.compile(r"转发(?:情况|量|率|记录|按钮|功能|链接|内容|要求|任务|工作)")
# A clause about the screenshot (截图稍后发, 截图发给谁？) is not about the relay.
_SCREENSHOT = re.compile(rf"(?:截图|截屏|图片|照片).{{0,6}}{_VERB}|{_VERB}(?:截图|截屏|图片|照片)")
# 按通知要求, 根据要求: how it was relayed, not an instruction to anyone.
_AS_REQUIRED = re.compile(r"(?:按照?|根据|依照)[^，,。；;！!？?\n]{0,8}(?:要求|通知|部署|安排)")
_ALL = re.compile(r"都|均|全部|全都|以上|所有|各条|几条|[两三四五六七八九十\d]条")


class _Kind(enum.Enum):
    YES = "yes"
    UNSURE = "unsure"
    NEG = "neg"  # a negation or failure about relaying
    PLAN = "plan"
    QUESTION = "question"
    INSTRUCTION = "instruction"
    OTHER_TOPIC = "other"  # the verb is about money or staff
    BARE = "bare"  # a relay verb with nothing that makes it complete or not
    ELLIPTIC = "elliptic"  # 今天的还没: a negation without its verb
    SIDE = "side"  # relayed to one person or to 朋友圈, not into groups
    NONE = "none"


_WHY = {
    _Kind.YES: "完成的转发",
    _Kind.UNSURE: "说得不确定",
    _Kind.NEG: "否定或转发失败",
    _Kind.PLAN: "打算稍后转发",
    _Kind.QUESTION: "问题",
    _Kind.INSTRUCTION: "提醒或要求别人",
    _Kind.OTHER_TOPIC: "说的是钱或人员",
    _Kind.BARE: "只有“转发”，没说已完成",
    _Kind.ELLIPTIC: "有未转的部分",
    _Kind.SIDE: "只转给了个人或朋友圈",
}


def _clause_kind(c: str, asked: bool) -> _Kind:
    """What one clause (no punctuation, lower case) says about relaying; `asked`: it ended in a question mark."""
    if not c:
        return _Kind.NONE
    verb = _VERB_RE.search(c)
    if verb is None or _SCREENSHOT.search(c) or _NOUN.fullmatch(c) or (_NOUN.search(c) and not _DONE_BEFORE.search(c)):
        if _LATER_ALONE.fullmatch(c):
            return _Kind.ELLIPTIC  # #2已转发，#1 稍后: a part still to do
        if (
            _ELLIPTIC_NEG.search(c)
            and not _QUESTION_WORD.search(c[:-2] if c.endswith("没有") else c)
            and not re.search(r"(?:之前|刚才|昨天|不好意思).{0,4}漏|漏.{0,2}不好意思", c)
        ):
            return _Kind.ELLIPTIC
        return _Kind.NONE
    if _MONEY.search(c) or _STAFF.search(c):
        return _Kind.OTHER_TOPIC
    if _FAILURE.search(c):
        return _Kind.NEG
    before = c[: verb.start()]
    if _OTHERS_DID.search(c[: verb.start()]) or re.search(r"有人问|别人问", c):
        return _Kind.NONE  # 有单位转发了旧版本, 群里还有人问能不能发个电子版
    if re.search(rf"不{_VERB}不(?:行|成|可以)", c):
        return _Kind.NONE  # 不转发不行啊: the next clause says what happened
    if _QUESTION_WORD.search(c):
        # 另外请问下一期什么时候发, 是不是还要转到业主群: a question about what comes next, not about this relay
        return _Kind.NONE if re.search(r"下一期|下次|另外|以后|还要|还需要|是不是还|要不要再", c) else _Kind.QUESTION
    if _REPLY_META.search(c):
        return _Kind.INSTRUCTION  # 完成后回复已转发: names the reply, does not give it
    # 已转发的单位请截图, 转发完的请截图: a relative clause about others.
    if re.search(rf"{_VERB}[了完好过]?的(?![嘛啊呀哦噻哈啦]).", c):
        return _Kind.INSTRUCTION
    if re.search(rf"{_VERB}[^，]{{0,8}}(?:时|的时候)", c):
        return _Kind.NONE  # 准备转发时……: when it happened, not that it happened
    if _OTHERS_DID.search(before):
        return _Kind.NONE  # 有单位转发了旧版本
    if "请" in before:
        return _Kind.INSTRUCTION  # 请已转发单位不要重复回复
    if _EARLIER_PUSH.search(before) and not re.search(r"这期|本期|这次|这条|今天", c):
        return _Kind.SIDE  # 上期转了: about another push
    said_before = bool(_DONE_BEFORE.search(before)) or before.startswith(("并", "同时"))  # 已张贴，并转发业主群
    if not said_before and re.search(r"请|别忘|记得|务必", c[verb.end() :]):
        return _Kind.INSTRUCTION  # 转发完请截图, 转了别忘了截图
    strong = said_before or bool(_DONE_AFTER.search(c))
    weak = bool(_DONE_WEAK.search(c)) or bool(_REACH.search(c))
    negations = len(_NEGATION.findall(before[-8:]))
    if negations >= 2:
        return _Kind.NONE  # 不是没转, 没说不转: the next clause says what happened
    if negations and ("已" not in before[-8:] or "不是" in before[-8:]):
        return _Kind.NEG
    if (_PROGRESSIVE.search(c) or _PLAN.search(before)) and not said_before:
        # 正在转发, 马上转, 一定转到位, 会转的; 书记们再往村民群发 is someone else's next step
        return _Kind.INSTRUCTION if _OTHERS.search(before) else _Kind.PLAN
    if not strong:
        if _INSTRUCTION.search(before):
            return _Kind.INSTRUCTION
        if _LATER.search(before):
            return _Kind.INSTRUCTION if _OTHERS.search(before) else _Kind.PLAN
        if not weak:
            return _Kind.BARE
    elif _DELEGATE.search(before) and not _GROUP_TARGET.search(c[verb.end() :]):
        return _Kind.UNSURE  # 已通知各村转发, 让小王转了
    elif _INSTRUCTION.search(before) and not said_before:
        return _Kind.INSTRUCTION  # 请大家转发后回复
    after = c[verb.end() :]
    if _PERSON_TARGET.search(after) and not _GROUP_TARGET.search(after):
        return _Kind.SIDE  # 已转发给主要领导, 发朋友圈了
    if asked:
        return _Kind.UNSURE  # 已转发？
    if _HEDGE.search(c):
        return _Kind.UNSURE
    return _Kind.YES


_SPLIT = re.compile(r"([?？]|[，,。．.；;！!、\n\r\t ：:…~～—\-（）()【】〔〕\[\]「」《》“”\"'‘’/|·]+)")


def _refs(text: str) -> tuple[str, list[int]]:
    """The push numbers named in the text, and the text without them."""
    refs: list[int] = []

    def take(m: re.Match) -> str:
        for part in re.findall(r"\d{1,7}|[一二三四五六七八九十]{1,3}", m.group(1)):
            refs.append(int(part) if part.isdigit() else _cn_number(part))
        return ""  # gone without a trace: 已将#9预警转发 stays one clause

    text = _REF_HASH.sub(take, text)
    text = _REF_ORDINAL.sub(take, text)
    text = _REF_LIST.sub(take, text)
    text = _REF_AFTER.sub(take, text)
    return text, [r for r in dict.fromkeys(refs) if r > 0]


def _cn_number(s: str) -> int:
    if s == "十":
        return 10
    if s.startswith("十"):
        return 10 + _CN_DIGITS.get(s[1:], 0)
    if s.endswith("十"):
        return _CN_DIGITS.get(s[0], 0) * 10
    if "十" in s:
        a, b = s.split("十", 1)
        return _CN_DIGITS.get(a, 0) * 10 + _CN_DIGITS.get(b, 0)
    return _CN_DIGITS.get(s, 0)


def normalise(text: str, names: tuple[str, ...] = ()) -> tuple[str, list[int]]:
    """The text as the clause reader sees it, and the push numbers it named."""
    body = clean(text)[:MAX_INPUT].translate(_T2S).lower()
    body = _TYPO_YI.sub("已", body)
    body = _HOMOPHONE_YI.sub("已", body)
    body = _PINYIN.sub("已转发", body)
    body = _DONE_EN.sub("搞定", body)
    for wrong, right in _TYPOS:
        body = body.replace(wrong, right)
    body = _FACE.sub("，", body)
    body = _MENTION.sub("，", body + " ").replace("@", "，")
    body = _QUOTED.sub("，", body)
    body = _TIME.sub("", body)
    body = _CHECKED.sub(r"\1已转，", body)  # 家长群✅ 工作群✅, #21 ✔
    body = _SPACED.sub(lambda m: m.group(0).replace(" ", ""), body)  # 已 转 发
    body = _ASKED_REPLY.sub("请", body)
    body = _AS_REQUIRED.sub("", body)
    for name in sorted({n.translate(_T2S).lower() for n in names if n and len(n) >= 2}, key=lambda n: (-len(n), n)):
        body = body.replace(name, "，")
    body, refs = _refs(body)
    body = _POLITE.sub("，", body)
    return body, refs


def read_reply(text: str, names: tuple[str, ...] = ()) -> Reading:
    """Read one reply; `names` (the units' and the sender's names) are taken out before reading."""
    body, refs = normalise(text, names)
    if len(body) > MAX_REPLY:
        return Reading(Verdict.UNRELATED, "太长，不是确认", "", tuple(refs))
    parts = _SPLIT.split(body)
    clauses: list[tuple[str, _Kind]] = []
    for i in range(0, len(parts), 2):
        raw = re.sub(r"[^\w]|_", "", parts[i])
        asked = i + 1 < len(parts) and parts[i + 1] in ("?", "？")
        kind = _clause_kind(raw, asked)
        if raw:
            clauses.append((raw, kind))
    kinds = [k for _, k in clauses]

    def decide(verdict: Verdict, kind: _Kind) -> Reading:
        clause = next((c for c, k in clauses if k is kind), "")
        return Reading(
            verdict,
            _WHY.get(kind, ""),
            clause,
            tuple(refs),
            bool(refs and len(refs) > 1) or (verdict is Verdict.YES and bool(_ALL.search(clause))),
        )

    if _EXAMPLE.search(body):
        return Reading(Verdict.NO, "举例或回复格式", "", tuple(refs))
    yes_at = max((i for i, k in enumerate(kinds) if k is _Kind.YES), default=-1)
    redone = yes_at >= 0 and bool(_REDONE.search(clauses[yes_at][0]))
    if _RETRACTED.search(body) and not redone:
        return Reading(Verdict.NO, "收回了先前的说法", "", tuple(refs))
    if yes_at >= 0 and not _THIS_PUSH.search(clauses[yes_at][0]):
        # 已转发到各群——上周五那条防汛的; 上一期#20已转发，这期的还没看到: which content was relayed? Ask.
        # (已转发！另外上期的也补转了 adds something; it does not put the confirmation in doubt.)
        for i, (c, _) in enumerate(clauses):
            if _BESIDES.search(c) or not (_OTHER_CAMPAIGN.search(c) or _EARLIER_PUSH.search(c)):
                continue
            if i in (yes_at - 1, yes_at, yes_at + 1):
                return Reading(Verdict.UNSURE, OTHER_CONTENT, clauses[yes_at][0], tuple(refs))
    if _Kind.YES in kinds and re.search(r"全部|各单位", body) and re.search(r"(?:感谢|谢谢|辛苦)(?:各位|大家)", body):
        return Reading(Verdict.UNSURE, "像是在汇总大家的转发", clauses[yes_at][0], tuple(refs))
    if _Kind.YES in kinds:
        if any(_DOES_IT_COUNT.search(c) for c, k in clauses if k is _Kind.NONE):
            return Reading(Verdict.UNSURE, "问这样算不算", clauses[yes_at][0], tuple(refs))
        doubts = [
            k
            for i, k in enumerate(kinds)
            if k in (_Kind.NEG, _Kind.PLAN, _Kind.QUESTION, _Kind.UNSURE, _Kind.ELLIPTIC)
            and not (redone and i < yes_at)
        ]
        if doubts:
            return decide(Verdict.UNSURE, doubts[0])
        return decide(Verdict.YES, _Kind.YES)
    for kind in (_Kind.UNSURE, _Kind.SIDE):
        if kind in kinds:
            return decide(Verdict.UNSURE, kind)
    for kind in (_Kind.NEG, _Kind.PLAN, _Kind.QUESTION, _Kind.INSTRUCTION, _Kind.OTHER_TOPIC):
        if kind in kinds:
            return decide(Verdict.NO, kind)
    if _Kind.BARE in kinds:
        return decide(Verdict.UNSURE, _Kind.BARE)
    if re.search(r"转发(?:情况|群数)", body) and _REACH.search(body):
        return Reading(Verdict.YES, "转发情况报告", body[:60], tuple(refs))  # 本单位转发情况：工作群1个，客户群4个
    done = next((c for c, _ in clauses if _GENERIC_DONE.fullmatch(c)), None)
    if done is not None:
        if _REACH.search(body):
            return Reading(Verdict.YES, "办好了，并说了几个群", done, tuple(refs))  # 弄好了，三个群
        return Reading(Verdict.UNSURE, "只说办好了，没说转发", done, tuple(refs))
    return Reading(Verdict.UNRELATED, "", "", tuple(refs))


# Faces that mean a thumbs-up or thanks when sent alone under a quoted push; others ([流泪], [疑问]) do not.
_NEGATIVE_FACES = re.compile(
    r"\[(?:衰|流泪|大哭|难过|撇嘴|发怒|吐|疑问|抓狂|委屈|快哭了|晕|囧|sob|cry|frown|angry|puke|confused|shocked|"
    r"awkward|scold|tear|whimper|facepalm)\]",
    re.IGNORECASE,
)
_NEGATIVE_EMOJI = re.compile("[\u2753\u2754\u274c\u274e\U0001f44e\U0001f62d\U0001f622\U0001f61e\U0001f620\U0001f621]")


def is_bare_ack(text: str) -> bool:
    """True when a reply is only emoji or WeChat faces (👍, [强], [OK], [Strong]) and none of them is a frown."""
    body = clean(text)[:MAX_INPUT]
    if not body or _NEGATIVE_FACES.search(body) or _NEGATIVE_EMOJI.search(body):
        return False
    return re.sub(r"[^\w]|_", "", _FACE.sub("", body)) == ""
