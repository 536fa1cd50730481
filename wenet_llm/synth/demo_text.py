"""Seeded text generator for the toolkit's synthetic bilingual speech corpus.

The demo corpus is English + Mandarin speech synthesised by espeak-ng from
text produced here, and a recognizer is then trained on it.  Everything in
this module therefore serves one goal: the transcript (``Sentence.text``)
must say exactly what espeak-ng is made to read (``Sentence.speak_text``).

Sentences come from a small hand-written grammar with a controlled
vocabulary: eight topics per language, each with its own nouns, verbs,
adjectives and venues plus shared function words, and a few clause
templates per topic.  One to three clauses are joined to get close to a
requested duration, estimated with speaking rates measured on espeak-ng at
its default speed.

Rare "entity" terms (invented person, company, product and place names) are
drawn from deterministic pools per seed (:class:`NameMaker`: the hotword
test's entities, rare training names, never-spoken distractors, kept apart)
and can be slotted into templates, so the corpus can also exercise
contextual biasing / hotword lists.

Transcript conventions:

* English: LibriSpeech style, UPPERCASE words separated by single spaces,
  no punctuation except apostrophes inside words.  espeak-ng reads the
  lowercased text (it spells short ALL-CAPS words such as "IT" letter by
  letter).
* Mandarin: Hanzi only, no spaces, punctuation, Latin letters or digits.
  espeak-ng's ``cmn-latn-pinyin`` voice misreads many polyphonic Hanzi, so
  it is fed tone-numbered pinyin computed per known word (pypinyin sees the
  whole word and picks the reading from its phrase dictionary).  The
  vocabulary avoids characters whose reading depends on context in ways
  pypinyin gets wrong (一 and 不 tone sandhi, 得/地/着 particles, ...).
"""

from __future__ import annotations

import math
import random
import re
from dataclasses import dataclass
from typing import Callable, Dict, List, Optional, Sequence, Tuple

LANGS = ("en", "zh")
ENTITY_KINDS = ("person", "company", "product", "place")


@dataclass(frozen=True)
class Entity:
    text: str  # transcript form (EN uppercase words; ZH Hanzi)
    kind: str  # one of ENTITY_KINDS
    lang: str


@dataclass(frozen=True)
class Sentence:
    text: str  # transcript
    speak_text: str  # what espeak-ng reads (EN lowercase; ZH pinyin words)
    lang: str
    topic: str
    entities: Tuple[str, ...]  # entity texts that occur in text, in order


# ---------------------------------------------------------------------------
# Vocabulary.
#
# Lists are written as strings: entries separated by "|", words inside an
# entry separated by spaces.  For Mandarin the spaces mark the word
# boundaries that drive the pinyin conversion; they never reach the
# transcript.
#
# English words were chosen to avoid heteronyms (LIVE, READ, WIND, CLOSE,
# RECORD, PRESENT, ...) whose espeak pronunciation would be a coin flip.
# ---------------------------------------------------------------------------


def _entries(spec: str) -> Tuple[str, ...]:
    return tuple(e.strip() for e in spec.split("|") if e.strip())


# Slots: S subject (takes the base verb form), M modal after S, M3 modal
# after a third-person singular entity, T future/present time, PT past time,
# I intensifier, D determiner.  Topic slots: N noun, V verb, A adjective,
# VENUE a topical place noun.
_EN_SHARED: Dict[str, Tuple[str, ...]] = {
    "S": _entries(
        "I|WE|THEY|YOU|MY FRIENDS|MY PARENTS|OUR NEIGHBORS|THE STUDENTS|"
        "MY COLLEAGUES|MY BROTHER AND I|MOST PEOPLE|OUR GUESTS"
    ),
    "M": _entries(
        "WILL|WANT TO|NEED TO|HAVE TO|PLAN TO|HOPE TO|SHOULD|CAN|MIGHT|"
        "WOULD LIKE TO|DON'T WANT TO|CAN'T|WON'T|ARE GOING TO"
    ),
    "M3": _entries(
        "WILL|WANTS TO|NEEDS TO|HAS TO|PLANS TO|HOPES TO|SHOULD|CAN|MIGHT|"
        "WOULD LIKE TO|DOESN'T WANT TO|CAN'T|WON'T|IS GOING TO"
    ),
    "T": _entries(
        "TODAY|TOMORROW|TONIGHT|THIS MORNING|THIS AFTERNOON|THIS EVENING|"
        "NEXT WEEK|NEXT MONTH|NEXT YEAR|ON MONDAY|ON TUESDAY|ON THURSDAY|"
        "ON FRIDAY|ON SATURDAY|THIS WEEKEND|LATER TODAY|EVERY DAY|SOON"
    ),
    "PT": _entries(
        "YESTERDAY|LAST WEEK|LAST NIGHT|LAST MONTH|LAST YEAR|TWO DAYS AGO|"
        "THIS MORNING|ON SUNDAY|ON WEDNESDAY|A FEW WEEKS AGO"
    ),
    "I": _entries("VERY|REALLY|QUITE|RATHER|EXTREMELY|SURPRISINGLY|SO|TOO|FAIRLY"),
    "D": _entries("THE|THIS|THAT|OUR|MY|THEIR|YOUR"),
    "CONJ": _entries(
        "AND|BUT|SO|BECAUSE|AND THEN|ALTHOUGH|AND ALSO|EVEN THOUGH"
    ),
}

_EN_TOPICS: Dict[str, Dict[str, Tuple[str, ...]]] = {
    "weather": {
        "N": _entries(
            "FORECAST|UMBRELLA|STORM|CLOUD|SUNSHINE|TEMPERATURE|RAINCOAT|"
            "THUNDER|BREEZE|SNOWFALL|SEASON|SKY|HEAT|FOG|HURRICANE|SCARF|"
            "RAINBOW|FROST|DROUGHT|BLIZZARD"
        ),
        "V": _entries(
            "CHECK|WATCH|EXPECT|AVOID|IGNORE|PREDICT|FOLLOW|DESCRIBE|"
            "MEASURE|ENJOY|PHOTOGRAPH"
        ),
        "A": _entries(
            "SUNNY|CLOUDY|WINDY|RAINY|FREEZING|CHILLY|HUMID|STORMY|FOGGY|"
            "WARM|COLD|MILD|BRIGHT|GLOOMY|PLEASANT"
        ),
        "VENUE": _entries("PARK|BEACH|MOUNTAIN|GARDEN|BALCONY"),
        "TEMPLATES": _entries(
            "IT WILL BE {A} AND {A2} {T}|"
            "THE FORECAST SAYS IT WILL BE ?{I} {A} {T}|"
            "DON'T FORGET TO BRING YOUR {N}|"
            "IT WAS ?{I} {A} AT THE {VENUE} {PT}|"
            "WE STAYED INSIDE BECAUSE OF THE {N}"
        ),
    },
    "travel": {
        "N": _entries(
            "TICKET|PASSPORT|SUITCASE|HOTEL|FLIGHT|TRAIN|MUSEUM|MAP|GUIDE|"
            "TOUR|CABIN|HARBOR|BRIDGE|CASTLE|ISLAND|TAXI|JOURNEY|VISA|"
            "BACKPACK|CRUISE"
        ),
        "V": _entries(
            "BOOK|VISIT|PACK|CANCEL|EXPLORE|CATCH|MISS|RESERVE|FIND|"
            "RECOMMEND|CHANGE"
        ),
        "A": _entries(
            "CROWDED|QUIET|FAMOUS|ANCIENT|BEAUTIFUL|CHEAP|EXPENSIVE|"
            "COMFORTABLE|DISTANT|CHARMING|HISTORIC|SCENIC"
        ),
        "VENUE": _entries("AIRPORT|STATION|HOSTEL|OLD TOWN|VILLAGE"),
        "TEMPLATES": _entries(
            "WE MISSED THE LAST TRAIN TO THE {VENUE}|"
            "{S} {M} BOOK A ROOM AT A_AN {A} HOTEL ?{T}|"
            "HOW LONG DOES IT TAKE TO GET TO THE {VENUE}|"
            "OUR FLIGHT LEAVES FROM THE {VENUE} {T}|"
            "THE VIEW FROM THE {N} WAS ?{I} {A}"
        ),
    },
    "shopping": {
        "N": _entries(
            "SHIRT|DRESS|SWEATER|BASKET|RECEIPT|DISCOUNT|WALLET|HAT|"
            "NECKLACE|BRACELET|MIRROR|BLANKET|PILLOW|LAMP|CARPET|COUPON|"
            "GIFT|PRICE|JACKET|HANDBAG"
        ),
        "V": _entries(
            "BUY|RETURN|ORDER|COMPARE|WRAP|EXCHANGE|CHOOSE|DELIVER|PICK|"
            "TRY ON|SELL"
        ),
        "A": _entries(
            "CASUAL|ELEGANT|FASHIONABLE|COLORFUL|SOFT|SMALL|LARGE|ORIGINAL|"
            "PERFECT|USEFUL|TINY|AFFORDABLE"
        ),
        "VENUE": _entries("MALL|SUPERMARKET|BOOKSTORE|MARKET|BOUTIQUE"),
        "TEMPLATES": _entries(
            "HOW MUCH DOES {D} {N} COST|"
            "{S} PAID TOO MUCH FOR {D} {N}|"
            "THE {VENUE} IS HAVING A BIG SALE {T}|"
            "CAN I PAY FOR THE {N} WITH A CREDIT CARD|"
            "{S} {M} GO TO THE {VENUE} ?{T}"
        ),
    },
    "technology": {
        "N": _entries(
            "COMPUTER|LAPTOP|KEYBOARD|SCREEN|PRINTER|NETWORK|PASSWORD|"
            "SOFTWARE|DATABASE|SERVER|BATTERY|CHARGER|CAMERA|ROBOT|"
            "APPLICATION|WEBSITE|CABLE|ALGORITHM|SENSOR|MONITOR"
        ),
        "V": _entries(
            "INSTALL|REPAIR|DOWNLOAD|TEST|RESTART|CONFIGURE|CONNECT|DESIGN|"
            "REPLACE|PROGRAM|CHARGE"
        ),
        "A": _entries(
            "DIGITAL|WIRELESS|POWERFUL|RELIABLE|SLOW|FAST|MODERN|SECURE|"
            "BROKEN|PORTABLE|SMART|ADVANCED"
        ),
        "VENUE": _entries("OFFICE|LAB|DATA CENTER|REPAIR SHOP|CLASSROOM"),
        "TEMPLATES": _entries(
            "MY {N} STOPPED WORKING {PT}|"
            "{S} {M} {V} THE {N} BEFORE THE MEETING|"
            "THE NEW {N} IS MUCH FASTER THAN THE OLD ONE|"
            "PLEASE REMEMBER TO CHANGE YOUR {N}|"
            "NOBODY IN THE {VENUE} COULD FIX THE {N}"
        ),
    },
    "sports": {
        "N": _entries(
            "FOOTBALL|BASKETBALL|TENNIS|RACKET|STADIUM|TEAM|COACH|PLAYER|"
            "MATCH|TOURNAMENT|MEDAL|TROPHY|REFEREE|GOALKEEPER|HELMET|"
            "BICYCLE|MARATHON|SCORE|SEASON TICKET|VOLLEYBALL"
        ),
        "V": _entries(
            "WIN|LOSE|PLAY|PRACTICE|JOIN|SUPPORT|DEFEND|CELEBRATE|ORGANIZE|"
            "WATCH|CHEER FOR"
        ),
        "A": _entries(
            "ATHLETIC|STRONG|EXCITING|TIRED|FIT|QUICK|BRAVE|TALENTED|"
            "FIERCE|LOCAL|PROFESSIONAL|YOUNG"
        ),
        "VENUE": _entries("GYM|FIELD|SWIMMING POOL|ARENA|TRACK"),
        "TEMPLATES": _entries(
            "OUR TEAM WON THE MATCH {PT}|"
            "{S} GO RUNNING IN THE PARK EVERY MORNING|"
            "THE {N} WAS ?{I} {A} {PT}|"
            "THE FANS WERE SINGING IN THE {VENUE}|"
            "{S} {M} PRACTICE AT THE {VENUE} ?{T}"
        ),
    },
    "food": {
        "N": _entries(
            "SANDWICH|SOUP|SALAD|PIZZA|CHICKEN|RICE|BREAD|CHEESE|TOMATO|"
            "POTATO|BANANA|CAKE|COOKIE|DUMPLING|RECIPE|BREAKFAST|DINNER|"
            "COFFEE|JUICE|PANCAKE"
        ),
        "V": _entries(
            "COOK|BAKE|TASTE|EAT|ORDER|PREPARE|SERVE|SHARE|FRY|BOIL|FINISH"
        ),
        "A": _entries(
            "DELICIOUS|SPICY|SWEET|SALTY|FRESH|CRISPY|BITTER|TASTY|JUICY|"
            "CREAMY|SOUR|HOMEMADE"
        ),
        "VENUE": _entries("RESTAURANT|KITCHEN|CAFE|BAKERY|FOOD COURT"),
        "TEMPLATES": _entries(
            "WHAT WOULD YOU LIKE FOR DINNER {T}|"
            "THE {N} TASTES ?{I} {A}|"
            "{S} {M} COOK SOMETHING {A} FOR DINNER ?{T}|"
            "THE CHEF AT THE {VENUE} MAKES A_AN {A} {N}|"
            "COULD YOU PASS ME THE {N} PLEASE"
        ),
    },
    "finance": {
        "N": _entries(
            "ACCOUNT|LOAN|BUDGET|SALARY|TAX|INVESTMENT|STOCK|PROFIT|PAYMENT|"
            "INVOICE|MORTGAGE|PENSION|CURRENCY|DEBT|INSURANCE|BALANCE|"
            "DEPOSIT|BONUS|CREDIT CARD|SAVINGS PLAN"
        ),
        "V": _entries(
            "PAY|SAVE|INVEST|BORROW|LEND|SIGN|APPROVE|REVIEW|CALCULATE|"
            "TRANSFER|ANALYZE"
        ),
        "A": _entries(
            "FINANCIAL|PROFITABLE|RISKY|STABLE|ANNUAL|MONTHLY|GENEROUS|"
            "PRIVATE|FAIR|SAFE|CAREFUL|AMBITIOUS"
        ),
        "VENUE": _entries("BANK|TAX OFFICE|BRANCH|ACCOUNTING OFFICE|HEAD OFFICE"),
        "TEMPLATES": _entries(
            "THE INTEREST RATE WENT UP {PT}|"
            "{S} {M} SAVE MORE MONEY ?{T}|"
            "THE {VENUE} APPROVED OUR {N} {PT}|"
            "HOW MUCH IS LEFT IN THE {N}|"
            "{S} {M} TALK TO THE BANK ABOUT THE {N}"
        ),
    },
    "health": {
        "N": _entries(
            "DOCTOR|NURSE|MEDICINE|VITAMIN|FEVER|HEADACHE|EXERCISE|DIET|"
            "APPOINTMENT|PRESCRIPTION|INJURY|TOOTHBRUSH|PATIENT|THERAPY|"
            "VACCINE|BANDAGE|BLOOD TEST|SLEEP|STRETCHING|HEARTBEAT"
        ),
        "V": _entries(
            "TAKE|TREAT|HEAL|PREVENT|SCHEDULE|CALL|SEE|ASK|NEED|IMPROVE|"
            "CANCEL"
        ),
        "A": _entries(
            "HEALTHY|SICK|PAINFUL|SERIOUS|MINOR|GENTLE|CALM|DIZZY|RESTFUL|"
            "NERVOUS|REGULAR|SLEEPY"
        ),
        "VENUE": _entries("HOSPITAL|CLINIC|PHARMACY|DENTIST|WAITING ROOM"),
        "TEMPLATES": _entries(
            "YOU SHOULD DRINK MORE WATER AND SLEEP EARLY|"
            "THE DOCTOR TOLD ME TO {V} THE {N}|"
            "{S} FEEL ?{I} {A} {T}|"
            "THE {VENUE} OPENS AT EIGHT IN THE MORNING|"
            "{S} {M} GO TO THE {VENUE} FOR A CHECK ?{T}"
        ),
    },
}

# Clause templates usable with any topic's vocabulary.
_EN_GENERIC = _entries(
    "{S} {M} {V} {D} {N} ?{T}|"
    "{S} {M} {V} {D} {A} {N}|"
    "{D} {N} IS ?{I} {A}|"
    "I THINK {D} {N} IS ?{I} {A}|"
    "{S} DON'T THINK {D} {N} IS {A} ENOUGH|"
    "LET'S {V} {D} {N} ?{T}|"
    "DO YOU KNOW WHERE {D} {N} IS|"
    "{S} TALKED ABOUT {D} {A} {N} {PT}|"
    "THE {N} AT THE {VENUE} WAS ?{I} {A}|"
    "{S} {M} GO TO THE {VENUE} AND {V} {D} {N}|"
    "WHY DON'T WE {V} {D} {N} ?{T}|"
    "EVERYONE SAYS THE {N} IS {A}"
)

# Entity templates, keyed by the sorted kinds of the entities they take.
# P person, C company, R product, L place; a second entity of the same
# kind uses the slot name with a "2".
_EN_ENTITY_TEMPLATES: Dict[Tuple[str, ...], Tuple[str, ...]] = {
    ("person",): _entries(
        "{P} {M3} {V} {D} {N} ?{T}|I MET {P} AT THE {VENUE} {PT}|"
        "{P} THINKS {D} {N} IS ?{I} {A}|{S} {M} {V} {D} {N} WITH {P}|"
        "ASK {P}"
    ),
    ("company",): _entries(
        "{C} {M3} {V} {D} {N} ?{T}|{S} WORK FOR {C}|"
        "THE {N} FROM {C} IS ?{I} {A}|{C} IS PLANNING A NEW {N}|"
        "CALL {C}"
    ),
    ("product",): _entries(
        "{S} {M} BUY THE NEW {R}|THE {R} IS ?{I} {A}|"
        "HAVE YOU TRIED THE {R}|THE PRICE OF THE {R} IS ?{I} FAIR|"
        "I LOVE THE {R}"
    ),
    ("place",): _entries(
        "{S} {M} TRAVEL TO {L} ?{T}|THE {N} IN {L} IS ?{I} {A}|"
        "{S} LIVED IN {L} FOR TWO YEARS|WELCOME TO {L}"
    ),
    ("person", "person"): _entries(
        "{P} AND {P2} {M} {V} {D} {N} ?{T}|{P} INTRODUCED ME TO {P2}|"
        "{P} WORKS WITH {P2}|{P} CALLED {P2}"
    ),
    ("company", "person"): _entries(
        "{P} WORKS FOR {C}|{P} WILL JOIN {C} NEXT YEAR|"
        "{P} IS A MANAGER AT {C}|{P} LEFT {C} {PT}"
    ),
    ("person", "product"): _entries(
        "{P} BOUGHT THE NEW {R} {PT}|{P} REALLY LIKES THE {R}|"
        "{P} LOST THE {R}"
    ),
    ("place", "person"): _entries(
        "I MET {P} IN {L}|{P} LIVES IN {L}|{P} {M3} FLY TO {L} ?{T}"
    ),
    ("company", "company"): _entries(
        "{C} WILL WORK WITH {C2}|{C} WANTS TO BUY {C2}|{C} SUED {C2}"
    ),
    ("company", "product"): _entries(
        "{C} WILL RELEASE THE {R} ?{T}|THE {R} IS MADE BY {C}|{C} SELLS THE {R}"
    ),
    ("company", "place"): _entries(
        "{C} WILL BUILD A NEW FACTORY IN {L}|{C} HAS AN OFFICE IN {L}|"
        "{C} LEFT {L}"
    ),
    ("product", "product"): _entries(
        "{S} WANT TO COMPARE THE {R} AND THE {R2}|"
        "THE {R} IS MORE {A} THAN THE {R2}|THE {R} BEATS THE {R2}"
    ),
    ("place", "product"): _entries(
        "THE {R} IS MADE IN {L}|YOU CAN BUY THE {R} IN {L}|THE {R} CAME FROM {L}"
    ),
    ("place", "place"): _entries(
        "{S} {M} DRIVE FROM {L} TO {L2} ?{T}|{L} IS FAR FROM {L2}|"
        "{L} IS NEAR {L2}"
    ),
}

# Mandarin.  Slots as for English; Mandarin has no agreement, so M3 = M.
_ZH_SHARED: Dict[str, Tuple[str, ...]] = {
    "S": _entries(
        "我|我们|他们|你|你们|大家|我 的 朋友|我 的 同事|我 的 家人|"
        "我 的 邻居|老师|同学们"
    ),
    "M": _entries("要|想|会|打算|需要|准备|可以|应该|希望|计划"),
    "T": _entries(
        "今天|明天|后天|周末|下午|晚上|早上|明年|下周|今年|中午|下个月|"
        "每天|最近"
    ),
    "PT": _entries("昨天|上周|去年|前天|上个月|刚才|那天|以前"),
    "I": _entries("很|非常|特别|真的 很|比较|挺|相当|十分"),
    "D": _entries("这里 的|我们 的|他们 的|你 的|那里 的|新 的"),
    "CONJ": _entries("而且|但是|所以|因为|然后|同时|另外|可是|其实|如果"),
}
_ZH_SHARED["M3"] = _ZH_SHARED["M"]

_ZH_TOPICS: Dict[str, Dict[str, Tuple[str, ...]]] = {
    "weather": {
        "N": _entries(
            "天气|气温|雨伞|外套|雨衣|围巾|手套|阳光|空气|天空|台风|雷雨|"
            "大雪|季节|春天|夏天|秋天|冬天|天气预报|温度"
        ),
        "V": _entries("查看|关注|准备|穿上|收听|讨论|担心|喜欢|享受|拍摄"),
        "A": _entries(
            "晴朗|暖和|凉快|寒冷|炎热|潮湿|干燥|舒服|闷热|阴沉|温暖|清新"
        ),
        "VENUE": _entries("公园|海边|山上|阳台|花园"),
        "TEMPLATES": _entries(
            "{T} 的 天气 {I} {A}|"
            "天气预报 说 {T} 会 {I} {A}|"
            "出门 的 时候 别 忘了 带 雨伞|"
            "{T} 可能 会 下雨|"
            "{PT} 在 {VENUE} 下雪 了"
        ),
    },
    "travel": {
        "N": _entries(
            "机票|护照|行李箱|酒店|航班|火车|地图|导游|博物馆|海滩|城堡|"
            "小岛|出租车|旅程|景点|签证|车票|宾馆|风景|背包"
        ),
        "V": _entries("预订|参观|收拾|取消|探索|寻找|游览|办理|推荐|拍摄"),
        "A": _entries(
            "拥挤|安静|有名|古老|美丽|便宜|昂贵|舒适|遥远|热闹|迷人|壮观"
        ),
        "VENUE": _entries("机场|火车站|酒店|景区|老城"),
        "TEMPLATES": _entries(
            "我们 的 航班 {T} 起飞|"
            "{S} {M} 预订 {A} 的 酒店|"
            "到 {VENUE} 要 多久|"
            "我们 错过 了 去 {VENUE} 的 火车|"
            "{VENUE} 的 风景 {I} {A}"
        ),
    },
    "shopping": {
        "N": _entries(
            "衬衫|裙子|毛衣|鞋子|钱包|项链|手链|镜子|毯子|枕头|台灯|地毯|"
            "礼物|购物车|优惠券|收据|商品|包裹|牛仔裤|帽子"
        ),
        "V": _entries("购买|退回|挑选|比较|包装|试穿|订购|推荐|寄送|收到"),
        "A": _entries(
            "时尚|漂亮|柔软|精致|实用|合适|鲜艳|高档|普通|划算|好看|便宜"
        ),
        "VENUE": _entries("商场|超市|商店|市场|书店"),
        "TEMPLATES": _entries(
            "这个 {N} 多少 钱|"
            "{S} 买 {N} 花了 三百 块|"
            "{VENUE} {T} 有 打折 活动|"
            "可以 用 信用卡 买 {N} 吗|"
            "{S} {M} 去 {VENUE} 逛逛"
        ),
    },
    "technology": {
        "N": _entries(
            "电脑|笔记本|键盘|屏幕|打印机|网络|密码|软件|数据库|服务器|电池|"
            "充电器|相机|机器人|应用|网站|算法|芯片|鼠标|程序"
        ),
        "V": _entries("安装|更新|修理|下载|测试|升级|重启|设置|连接|设计|开发|维护"),
        "A": _entries(
            "先进|智能|强大|可靠|稳定|安全|快速|便携|复杂|简单|新颖|高效"
        ),
        "VENUE": _entries("实验室|办公室|机房|教室|维修店"),
        "TEMPLATES": _entries(
            "我 的 {N} {PT} 坏了|"
            "{S} {M} 在 开会 之前 {V} {N}|"
            "新 的 {N} 比 旧 的 快 很多|"
            "请 记得 修改 你 的 密码|"
            "{VENUE} 里 没有 人 会 修 {N}"
        ),
    },
    "sports": {
        "N": _entries(
            "足球|篮球|网球|球拍|体育场|球队|教练|球员|比赛|奖牌|奖杯|裁判|"
            "守门员|头盔|自行车|马拉松|比分|跑鞋|排球|冠军"
        ),
        "V": _entries("赢得|输掉|参加|练习|观看|支持|组织|庆祝|报名|训练"),
        "A": _entries(
            "激烈|精彩|强壮|疲惫|勇敢|专业|年轻|紧张|顽强|出色|厉害|优秀"
        ),
        "VENUE": _entries("体育馆|操场|球场|健身房|游泳池"),
        "TEMPLATES": _entries(
            "我们 的 球队 {PT} 赢得 了 比赛|"
            "{S} 每天 早上 在 公园 跑步|"
            "{PT} 的 比赛 {I} {A}|"
            "球迷 们 在 {VENUE} 唱歌|"
            "{S} {M} 去 {VENUE} 练习"
        ),
    },
    "food": {
        "N": _entries(
            "饺子|面条|米饭|包子|沙拉|披萨|鸡肉|牛肉|蛋糕|饼干|面包|奶酪|"
            "西红柿|土豆|苹果|香蕉|咖啡|果汁|早餐|火锅"
        ),
        "V": _entries("做|烤|品尝|吃|点|准备|分享|炒|煮|尝尝"),
        "A": _entries("好吃|辣|甜|咸|新鲜|香脆|可口|清淡|美味|油腻|酸|香"),
        "VENUE": _entries("餐厅|厨房|饭馆|食堂|咖啡馆"),
        "TEMPLATES": _entries(
            "{N} 的 味道 {I} {A}|"
            "{S} {T} 想 吃 {N}|"
            "晚饭 我们 做 {N} 吧|"
            "{VENUE} 的 厨师 做 的 {N} {I} {A}|"
            "请 把 {N} 递给 我"
        ),
    },
    "finance": {
        "N": _entries(
            "账户|贷款|预算|工资|投资|股票|利润|合同|发票|房贷|养老金|货币|"
            "债务|存款|保险|报告|利率|奖金|信用卡|税款"
        ),
        "V": _entries("支付|存|借|签署|批准|审核|计算|转账|分析|申请|管理"),
        "A": _entries(
            "稳定|安全|合理|透明|昂贵|划算|可观|谨慎|清楚|复杂|充足|紧张"
        ),
        "VENUE": _entries("银行|公司|交易所|营业厅|财务部"),
        "TEMPLATES": _entries(
            "银行 {PT} 提高 了 利率|"
            "{S} {M} 每个月 存 钱|"
            "{VENUE} {PT} 批准 了 我们 的 {N}|"
            "{S} 打算 {T} 去 银行 办理 {N}|"
            "我们 的 {N} {I} {A}"
        ),
    },
    "health": {
        "N": _entries(
            "医生|护士|药|维生素|发烧|头疼|运动|饮食|预约|处方|伤口|牙刷|"
            "病人|疫苗|绷带|体检|睡眠|血压|心跳|营养"
        ),
        "V": _entries("看|治疗|预防|安排|检查|服用|注意|改善|接种|取消"),
        "A": _entries(
            "健康|疲倦|严重|轻微|温和|平静|头晕|紧张|规律|充足|虚弱|舒服"
        ),
        "VENUE": _entries("医院|诊所|药店|健身房|牙科"),
        "TEMPLATES": _entries(
            "你 应该 多 喝 水 早点 睡觉|"
            "医生 建议 我 {V} {N}|"
            "{S} {T} 觉得 {I} {A}|"
            "{VENUE} 早上 八点 开门|"
            "{S} {T} 要 去 {VENUE} 检查 身体"
        ),
    },
}

_ZH_GENERIC = _entries(
    "{S} ?{T} {M} {V} {N}|"
    "{S} {M} {V} {A} 的 {N}|"
    "{D} {N} {I} {A}|"
    "我 觉得 {D} {N} {I} {A}|"
    "{S} ?{PT} 没有 {V} {N}|"
    "我们 一起 去 {VENUE} {V} {N} 吧|"
    "你 知道 {N} 在 哪里 吗|"
    "{PT} 的 {N} {I} {A}|"
    "{S} ?{T} {M} 去 {VENUE} {V} {N}|"
    "{S} 对 {D} {N} {I} 满意|"
    "{S} 经常 在 {VENUE} {V} {N}|"
    "大家 都 说 {N} {I} {A}"
)

_ZH_ENTITY_TEMPLATES: Dict[Tuple[str, ...], Tuple[str, ...]] = {
    ("person",): _entries(
        "{P} ?{T} {M} {V} {N}|我 {T} 要 和 {P} 一起 去 {VENUE}|"
        "{P} 觉得 {D} {N} {I} {A}|我 在 {VENUE} 遇到 了 {P}|我 找 {P}"
    ),
    ("company",): _entries(
        "{C} ?{T} 要 {V} {N}|{S} 在 {C} 工作|{C} 的 {N} {I} {A}|"
        "{C} 准备 推出 新 的 {N}|我 喜欢 {C}"
    ),
    ("product",): _entries(
        "{S} {M} 买 {R}|{R} {I} {A}|你 用 过 {R} 吗|"
        "{R} 的 价格 {I} 合理|我 有 {R}"
    ),
    ("place",): _entries(
        "{S} ?{T} {M} 去 {L}|{L} 的 {N} {I} {A}|{S} 在 {L} 住 过 两 年|"
        "欢迎 来到 {L}"
    ),
    ("person", "person"): _entries(
        "{P} 和 {P2} ?{T} 要 {V} {N}|{P} 想 认识 {P2}|{P} 是 {P2} 的 同事|"
        "{P} 找 {P2}"
    ),
    ("company", "person"): _entries(
        "{P} 在 {C} 工作|{P} 明年 要 去 {C} 上班|{P} 是 {C} 的 经理|"
        "{P} 离开 了 {C}"
    ),
    ("person", "product"): _entries(
        "{P} ?{T} 要 买 {R}|{P} 很 喜欢 {R}|{P} 丢 了 {R}"
    ),
    ("place", "person"): _entries(
        "我 在 {L} 遇到 了 {P}|{P} 住 在 {L}|{P} ?{T} 要 去 {L} 出差"
    ),
    ("company", "company"): _entries(
        "{C} 和 {C2} 要 合作|{C} 打算 收购 {C2}|{C} 告 了 {C2}"
    ),
    ("company", "product"): _entries(
        "{C} ?{T} 要 发布 {R}|{R} 是 {C} 生产 的|{C} 卖 {R}"
    ),
    ("company", "place"): _entries(
        "{C} 要 在 {L} 建 新 的 工厂|{C} 的 总部 在 {L}|{C} 来 {L}"
    ),
    ("product", "product"): _entries(
        "{S} 想 比较 {R} 和 {R2}|{R} 比 {R2} 更 {A}|{R} 比 {R2} 好"
    ),
    ("place", "product"): _entries(
        "{R} 是 在 {L} 生产 的|在 {L} 可以 买到 {R}|{R} 来自 {L}"
    ),
    ("place", "place"): _entries(
        "{S} ?{T} 要 从 {L} 去 {L2}|{L} 离 {L2} 很 远|{L} 靠近 {L2}"
    ),
}

_SHARED = {"en": _EN_SHARED, "zh": _ZH_SHARED}
_TOPICS = {"en": _EN_TOPICS, "zh": _ZH_TOPICS}
_GENERIC = {"en": _EN_GENERIC, "zh": _ZH_GENERIC}
# Keys are normalised to sorted kind tuples, the form make_sentence looks up.
_ENTITY_TEMPLATES = {
    lang: {tuple(sorted(k)): v for k, v in table.items()}
    for lang, table in (("en", _EN_ENTITY_TEMPLATES), ("zh", _ZH_ENTITY_TEMPLATES))
}

_KIND_SLOT = {"person": "P", "company": "C", "product": "R", "place": "L"}

# ---------------------------------------------------------------------------
# Entity name parts.
#
# English names are glued from syllable parts that do not form English
# words ("ZOR" + "VATH"), so they are rare words for the recognizer, yet
# espeak-ng's letter-to-sound rules read them as words (every part has a
# vowel).  Mandarin names only use characters for which pypinyin lists a
# single reading (checked in the tests), so the Hanzi -> pinyin mapping of
# an entity is unambiguous whatever the context.
# ---------------------------------------------------------------------------

_EN_HEADS = (
    "ZOR", "KEL", "QUEN", "DRAV", "VEL", "THAR", "MOR", "XAN", "ZEL", "KAV",
    "ULM", "BRIN", "JAX", "NER", "SKAV", "TOR", "VAS", "YAR", "GLOR", "FEN",
    "RHUN", "ELD", "ISK", "OZ", "PRAX", "QUIL", "ZAN", "KOR", "VOR", "TEM",
)
_EN_MIDS = ("A", "I", "O", "U", "E", "AN", "EL", "OR")
_EN_TAILS = (
    "VATH", "MARA", "LIX", "DOR", "VEN", "RIK", "THOS", "NIA", "ZEL", "RANT",
    "MUND", "KESH", "LOR", "VIN", "DRITH", "TUN", "QUAR", "SEN", "BEK", "RIS",
    "ZOTH", "MIRA", "NOK", "VEX", "DAR", "LETH", "OVA", "ULEN", "ASK", "IRA",
)
_EN_SUFFIXES = {
    "person": ("",),
    "company": (
        "INDUSTRIES", "LABS", "SYSTEMS", "GROUP", "MOTORS", "DYNAMICS",
        "ROBOTICS", "FOODS", "AIRLINES", "CAPITAL", "NETWORKS", "ENERGY",
    ),
    "product": (
        "PHONE", "WATCH", "TABLET", "CAMERA", "SPEAKER", "DRONE", "HEADSET",
        "SCOOTER", "LAPTOP", "ROUTER", "BLENDER", "MONITOR",
    ),
    "place": ("",),
}

_ZH_SURNAMES = (
    "李张刘陈杨黄赵周徐孙马胡林梁宋郑谢韩唐萧程袁苏蒋薛阎戴钟田姜范谭邹熊"
    "孔崔邱秦江史顾邵孟龙段钱黎易常武乔贺赖龚文"
)
_ZH_GIVEN = (
    "伟芳静磊艳勇军杰娟涛斌秀霞婷雪琳宇轩梅凯鹏辉敏玲晨欣怡博岚峰瑶翔颖琦"
    "薇萱睿哲瑜璐嘉蕾钰泽铭航硕阳旭聪慧"
)
_ZH_BRAND = "泽兰瑞嘉润宏锐博凯迅腾飞星辰昊澜峰源铭宇航钧琪璞珀麟霖朔岳翎枫骁曜琥"
_ZH_PLACE = "柳松枫苇梅杏蓉霞岚湘滨洲坪塘泉峡云林川河源丰安泰临江湖岩桥渡潮碧翠杨槐榆楠桂锦黛"
_ZH_SUFFIXES = {
    "person": ("",),
    "company": ("科技", "集团", "电子", "传媒", "能源", "食品", "物流", "汽车", "航空", "制药"),
    "product": ("手机", "手表", "耳机", "音箱", "平板", "电脑", "冰箱", "饮料"),
    "place": ("镇", "村", "湾", "岛", "县", "乡"),
}

# ---------------------------------------------------------------------------
# Duration model, calibrated on espeak-ng 1.51 at its default speed (-s 175)
# by synthesising 160 generated sentences per language (targets 2.5-8 s)
# and fitting a line to the WAV durations.  English time follows the letter
# count better than the word count (rmse 0.23 s vs 0.38 s) because word
# length varies a lot, invented entity names included; overall espeak says
# about 3.3 words/s here, faster than the ~2.7 words/s of read speech.
# Mandarin is one syllable per character, about 3.9 characters/s overall.
# The intercept covers the silence espeak puts around an utterance.  On 300
# further sentences per language, real/estimated duration stayed within
# 0.86-1.14 (English) and 0.86-1.20 (Mandarin).
# ---------------------------------------------------------------------------

_EN_SEC_BASE = 0.43
_EN_SEC_PER_LETTER = 0.061
_ZH_SEC_BASE = 0.39
_ZH_SEC_PER_CHAR = 0.235

_HANZI_RE = re.compile(r"[\u4e00-\u9fff]")
_PINYIN_SYLLABLE_RE = re.compile(r"[a-z]+[1-5]")
_DOUBLE_LETTER_RE = re.compile(r"(.)\1")


def _check_lang(lang: str) -> None:
    if lang not in LANGS:
        raise ValueError(f"unknown lang {lang!r}; valid: {', '.join(LANGS)}")


def _check_topic(lang: str, topic: str) -> None:
    if topic not in _TOPICS[lang]:
        raise ValueError(
            f"unknown topic {topic!r} for {lang}; valid: {', '.join(_TOPICS[lang])}"
        )


def topics(lang: str) -> Tuple[str, ...]:
    """Topic names for ``lang`` (same set for both languages)."""
    _check_lang(lang)
    return tuple(_TOPICS[lang])


def estimate_duration(text: str, lang: str) -> float:
    """Estimated espeak-ng speaking time of a transcript, in seconds."""
    _check_lang(lang)
    if lang == "en":
        letters = sum(c.isalpha() for c in text)
        if letters == 0:
            return 0.0
        return _EN_SEC_BASE + _EN_SEC_PER_LETTER * letters
    n = len(_HANZI_RE.findall(text))
    if n == 0:
        return 0.0
    return _ZH_SEC_BASE + _ZH_SEC_PER_CHAR * n


def to_speak_text(text_words: Sequence[str], lang: str) -> str:
    """Text for espeak-ng from the transcript's words.

    English: the words lowercased (espeak spells short uppercase words).
    Mandarin: tone-numbered pinyin per word, syllables of a word written
    together, words separated by spaces.  Each word is converted as a whole
    so pypinyin's phrase dictionary picks the in-word reading of polyphones
    (银行 -> yin2hang2, not yin2xing2).
    """
    _check_lang(lang)
    if lang == "en":
        return " ".join(w.lower() for w in text_words for w in w.split())
    # Imported lazily: only Mandarin needs pypinyin.
    from pypinyin import Style, lazy_pinyin

    out = []
    for word in text_words:
        word = word.replace(" ", "")
        if not word:
            continue
        syllables = lazy_pinyin(word, style=Style.TONE3, neutral_tone_with_five=True)
        for s in syllables:
            if not _PINYIN_SYLLABLE_RE.fullmatch(s):
                raise ValueError(f"no tone-numbered pinyin for {s!r} in {word!r}")
        out.append("".join(syllables))
    return " ".join(out)


def vocabulary(lang: str) -> frozenset:
    """All plain (non-entity) words the generator can emit for ``lang``.

    English: single uppercase words.  Mandarin: the word units used for the
    pinyin conversion (mostly multi-character words).
    """
    _check_lang(lang)
    words = set()

    def add_template(t: str) -> None:
        for tok in t.split():
            if "{" not in tok and tok != "A_AN":
                words.add(tok)

    def add_entries(entries: Sequence[str]) -> None:
        for e in entries:
            words.update(e.split())

    for key, entries in _SHARED[lang].items():
        add_entries(entries)
    for table in _TOPICS[lang].values():
        for key, entries in table.items():
            if key == "TEMPLATES":
                for t in entries:
                    add_template(t)
            else:
                add_entries(entries)
    for t in _GENERIC[lang]:
        add_template(t)
    for ts in _ENTITY_TEMPLATES[lang].values():
        for t in ts:
            add_template(t)
    if lang == "en":
        words.update(("A", "AN"))
    return frozenset(words)


def entity_pool(lang: str, seed: int, size_per_kind: int = 40) -> List[Entity]:
    """Deterministic pool of invented entity names for ``lang`` and ``seed``.

    Returns ``size_per_kind`` entities of each kind, in ENTITY_KINDS order.
    Texts are unique and never a plain vocabulary word; English name cores
    (the invented word) are unique across the whole pool.  The same as the
    first pool of a fresh :class:`NameMaker` (purpose ``"entities"``).
    """
    return NameMaker(lang, seed).pool("entities", size_per_kind)


class NameMaker:
    """Invented names for one language and seed, kept apart across pools.

    Each pool (a ``purpose``: the hotword-test entities, the rare training
    names, never-spoken distractors, ...) draws from its own generator,
    seeded from the purpose, so a pool depends only on the seed and on the
    pools made before it by the same maker.  Names of different pools never
    share a text or a core: an English core word ("ZORVATH") or a Mandarin
    brand / place syllable pair ("泽兰") heard in one pool is never part of
    another pool's name, so a name that only occurs in a test set stays
    unheard even in part.  Mandarin names never contain one another, within
    or across pools (keeps "the name occurs once" well defined).  Within a
    pool a Mandarin brand may name both a company and a product ("泽兰科技",
    "泽兰手机").
    """

    def __init__(self, lang: str, seed: int):
        _check_lang(lang)
        self.lang = lang
        self.seed = seed
        self._vocab = vocabulary(lang)
        self._rngs: Dict[str, random.Random] = {}
        self._cores: Dict[str, set] = {}  # per purpose: kind-qualified cores
        self._cross: Dict[str, set] = {}  # per purpose: the cores other pools must avoid
        self._texts: set = set()
        self._substrings: set = set()  # every substring of every Mandarin name

    def pool(self, purpose: str, size_per_kind: int,
             avoid: Optional[Callable[[str], bool]] = None) -> List[Entity]:
        """``size_per_kind`` new names of each kind, in ENTITY_KINDS order (see :meth:`new`)."""
        if size_per_kind < 1:
            raise ValueError("size_per_kind must be >= 1")
        return [self.new(purpose, kind, avoid, _limit=200 * size_per_kind + 1000)
                for kind in ENTITY_KINDS for _ in range(size_per_kind)]

    def new(self, purpose: str, kind: str, avoid: Optional[Callable[[str], bool]] = None,
            _limit: int = 5000) -> Entity:
        """One new name of ``kind`` for ``purpose``, distinct from every name made so far.

        ``avoid(text)`` true refuses a name (e.g. one that planned text already says).
        """
        if kind not in ENTITY_KINDS:
            raise ValueError(f"unknown entity kind {kind!r}; valid: {', '.join(ENTITY_KINDS)}")
        if purpose not in self._rngs:
            # A private generator seeded from a string: str seeds are hashed
            # with SHA-512, so pools are stable across processes and Python
            # versions ("entities" keeps the seed string of the original pool).
            self._rngs[purpose] = random.Random(f"wenet_llm.demo_text.{purpose}/{self.lang}/{self.seed}")
            self._cores[purpose] = set()
            self._cross[purpose] = set()
        rng = self._rngs[purpose]
        taken_elsewhere = set().union(*(c for p, c in self._cross.items() if p != purpose))
        for _ in range(_limit):
            made = _en_entity(rng, kind) if self.lang == "en" else _zh_entity(rng, kind)
            if made is None:
                continue
            core, text = made
            cross = core.split(":")[-1]  # a Mandarin brand pair, whatever kind it names
            # "ZORVATH" must stay one name: a second entity reusing the core
            # would make the hotword ambiguous.
            if core in self._cores[purpose] or core in self._vocab or cross in taken_elsewhere:
                continue
            if text in self._texts or text in self._vocab or (avoid is not None and avoid(text)):
                continue
            if self.lang == "zh" and (text in self._substrings or any(s in self._texts for s in _substrings(text))):
                continue  # one name inside another
            self._cores[purpose].add(core)
            self._cross[purpose].add(cross)
            self._texts.add(text)
            if self.lang == "zh":
                self._substrings.update(_substrings(text))
            return Entity(text=text, kind=kind, lang=self.lang)
        raise ValueError(
            f"cannot make another distinct {kind} name for {self.lang} ({purpose}): the name parts are "
            f"used up; ask for fewer names (e.g. a smaller distractor pool or rare-name rate)"
        )


def _substrings(text: str) -> List[str]:
    return [text[i:j] for i in range(len(text)) for j in range(i + 1, len(text) + 1)]


def _en_entity(rng: random.Random, kind: str) -> Optional[Tuple[str, str]]:
    head = rng.choice(_EN_HEADS)
    tail = rng.choice(_EN_TAILS)
    # A linking vowel only between consonants ("KAV" + "A" + "NOK"); before
    # a vowel-initial tail it would make hiatus like "KAVUOVA".
    mid = rng.choice(_EN_MIDS) if tail[0] not in "AEIOU" and rng.random() < 0.3 else ""
    core = head + mid + tail
    if _DOUBLE_LETTER_RE.search(core):
        return None  # "ELDDAR": espeak merges the pair, the spelling misleads
    suffix = rng.choice(_EN_SUFFIXES[kind])
    return core, (core + " " + suffix) if suffix else core


def _zh_entity(rng: random.Random, kind: str) -> Optional[Tuple[str, str]]:
    if kind == "person":
        given = "".join(rng.choice(_ZH_GIVEN) for _ in range(1 if rng.random() < 0.35 else 2))
        if len(set(given)) != len(given):
            return None  # "李伟伟" is a real pattern, but keep names varied
        core = rng.choice(_ZH_SURNAMES) + given
        return core, core
    chars = _ZH_PLACE if kind == "place" else _ZH_BRAND
    a, b = rng.sample(chars, 2)
    suffix = rng.choice(_ZH_SUFFIXES[kind])
    if a in suffix or b in suffix:
        return None  # "航飞航空" repeats a syllable; keep names crisp
    # The core is kind-qualified: a brand may serve both a company and a
    # product ("泽兰科技", "泽兰手机") but only once per kind.
    return f"{kind}:{a}{b}", a + b + suffix


# ---------------------------------------------------------------------------
# Sentence generation.
# ---------------------------------------------------------------------------


def _resolve_articles(words: List[str]) -> List[str]:
    """Turn the template token "A_AN" into A or AN by the next word."""
    out = []
    for i, w in enumerate(words):
        if w == "A_AN":
            nxt = words[i + 1] if i + 1 < len(words) else ""
            vowel = nxt[:1] in ("A", "E", "I", "O") or (
                nxt[:1] == "U" and not nxt.startswith(("UNI", "USE", "USU"))
            )
            w = "AN" if vowel else "A"
        out.append(w)
    return out


def _fill(
    rng: random.Random,
    template: str,
    table: Dict[str, Tuple[str, ...]],
    slots: Dict[str, Entity],
    p_optional: float,
) -> Tuple[List[str], List[str]]:
    """Expand one template into words; returns (words, entity texts in order)."""
    words: List[str] = []
    ents: List[str] = []
    chosen: Dict[str, str] = {}
    for tok in template.split():
        if tok.startswith("?"):
            tok = tok[1:]
            if rng.random() >= p_optional:
                continue
        if not tok.startswith("{"):
            words.append(tok)
            continue
        name = tok[1:-1]
        if name in slots:
            words.append(slots[name].text)
            ents.append(slots[name].text)
            continue
        base = name.rstrip("2")
        options = table[base]
        # A second slot of the same kind ({A2}, {N2}) gets a different word.
        taken = {v for k, v in chosen.items() if k.rstrip("2") == base}
        pick = rng.choice([o for o in options if o not in taken] or list(options))
        chosen[name] = pick
        words.extend(pick.split())
    return words, ents


def _entity_slots(entities: Sequence[Entity]) -> Tuple[Tuple[str, ...], Dict[str, Entity]]:
    kinds = tuple(sorted(e.kind for e in entities))
    slots: Dict[str, Entity] = {}
    for e in entities:
        name = _KIND_SLOT[e.kind]
        if name in slots:
            name += "2"
        slots[name] = e
    return kinds, slots


def _join(words: List[str], lang: str) -> str:
    return " ".join(words) if lang == "en" else "".join(words)


def _count_entity(text: str, ent: str, lang: str) -> int:
    if lang == "en":
        return f" {text} ".count(f" {ent} ")
    return text.count(ent)


def make_sentence(
    rng: random.Random,
    lang: str,
    topic: str,
    target_seconds: float,
    entities: Sequence[Entity] = (),
) -> Sentence:
    """One sentence on ``topic`` whose estimated duration is near the target.

    ``entities`` (0, 1 or 2) are each placed exactly once, in a template made
    for their kinds; with none, only templates without entity slots are used.
    The estimate aims at [0.75, 1.15] x target and never knowingly exceeds
    1.25 x target unless even the shortest candidate found does.
    """
    _check_lang(lang)
    _check_topic(lang, topic)
    if not target_seconds > 0:
        raise ValueError("target_seconds must be > 0")
    entities = tuple(entities)
    if len(entities) > 2:
        raise ValueError("at most 2 entities per sentence")
    for e in entities:
        if e.kind not in ENTITY_KINDS:
            raise ValueError(
                f"unknown entity kind {e.kind!r}; valid: {', '.join(ENTITY_KINDS)}"
            )
        if e.lang != lang:
            raise ValueError(f"entity {e.text!r} is {e.lang}, sentence is {lang}")
    if len({e.text for e in entities}) != len(entities):
        raise ValueError("entities must have distinct texts")

    topic_table = _TOPICS[lang][topic]
    table = dict(_SHARED[lang])
    table.update({k: v for k, v in topic_table.items() if k != "TEMPLATES"})
    plain_templates = topic_table["TEMPLATES"] + _GENERIC[lang]
    if entities:
        kinds, slots = _entity_slots(entities)
        first_templates = _ENTITY_TEMPLATES[lang][kinds]
    else:
        slots = {}
        first_templates = plain_templates

    lo, hi, cap = 0.75 * target_seconds, 1.15 * target_seconds, 1.25 * target_seconds
    best: Optional[Tuple[float, List[str], List[str]]] = None
    best_score = math.inf
    for _ in range(200):
        # How often optional slots are used varies per attempt, which gives
        # both short and long versions of the same templates.
        p_opt = rng.random()
        words, ents = _fill(rng, rng.choice(first_templates), table, slots, p_opt)
        n_clauses = 1
        while n_clauses < 3 and estimate_duration(_join(words, lang), lang) < lo:
            more, _ = _fill(rng, rng.choice(plain_templates), table, {}, p_opt)
            words = words + rng.choice(table["CONJ"]).split() + more
            n_clauses += 1
        if lang == "en":
            words = _resolve_articles(words)
        text = _join(words, lang)
        if any(_count_entity(text, e.text, lang) != 1 for e in entities):
            continue  # an entity also formed by accident elsewhere; redraw
        est = estimate_duration(text, lang)
        if lo <= est <= hi:
            best = (est, words, ents)
            break
        # Fallback ranking: anything under the cap beats anything over it,
        # then closeness on a log scale.
        score = abs(math.log(est / target_seconds)) + (10.0 if est > cap else 0.0)
        if score < best_score:
            best_score = score
            best = (est, words, ents)
    if best is None:
        raise RuntimeError("could not generate a sentence for the given entities")
    _, words, ents = best
    return Sentence(
        text=_join(words, lang),
        speak_text=to_speak_text(words, lang),
        lang=lang,
        topic=topic,
        entities=tuple(ents),
    )
