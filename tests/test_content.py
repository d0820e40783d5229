"""The content library and the sentences: complete, well-formed, and every key the code uses exists."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from bot.content import CONTENT_DIR, load_library, load_texts
from bot.textnorm import squeeze

ROOT = Path(__file__).resolve().parent.parent
REQUIRED_TYPES = [
    "刷单返利",
    "虚假投资理财",
    "虚假网络贷款",
    "冒充电商物流客服",
    "冒充公检法",
    "虚假征信",
    "网络婚恋交友",
    "冒充领导熟人",
    "网络游戏虚假交易",
    "虚假购物服务",
    "冒充军警购物",
]


def test_library_has_the_high_incidence_types_with_short_forwardable_alerts():
    library = load_library()
    assert len(library.alerts) >= 12
    assert set(REQUIRED_TYPES) <= set(library.case_types())
    for alert in library.alerts:
        assert alert.title and len(alert.title) <= 30, alert.case_type
        assert len(alert.body) <= 500, alert.case_type
        assert "96110" in alert.body, alert.case_type
        assert alert.aliases, alert.case_type


@pytest.mark.parametrize(
    "typed,case_type",
    [
        ("刷单", "刷单返利"),
        ("刷单返利", "刷单返利"),
        ("公检法", "冒充公检法"),
        ("杀猪盘", "网络婚恋交友"),
        ("征信", "虚假征信"),
        ("网贷", "虚假网络贷款"),
        ("校园贷", "注销校园贷"),
        (" 刷 单 ", "刷单返利"),
    ],
)
def test_short_forms(typed, case_type):
    assert load_library().find(typed).case_type == case_type


def test_unknown_and_ambiguous_names_find_nothing():
    library = load_library()
    assert library.find("外星人诈骗") is None
    assert library.find("") is None
    assert library.find("刷单和公检法") is None  # two types named: ambiguous


def test_aliases_are_unique_across_the_library():
    keys = [squeeze(n) for a in load_library().alerts for n in (a.case_type, *a.aliases)]
    assert len(keys) == len(set(keys))


def test_every_text_key_used_in_code_exists():
    texts = load_texts()
    used = set()
    # models.py and the migrations have "table.column" strings
    code = [p for p in ROOT.glob("bot/**/*.py") if p.name != "models.py" and "migrations" not in p.parts]
    for path in [*code, *ROOT.glob("handlers/*.py"), ROOT / "scheduler.py"]:
        literals = re.findall(r"""["']([a-z]+\.[a-z_]+)["']""", path.read_text(encoding="utf-8"))
        used |= {k for k in literals if k.split(".")[0] in texts._data}
    assert len(used) > 40
    for key in sorted(used):
        texts.t(key, **{k: "x" for k in re.findall(r"{(\w+)}", _raw(texts, key))})


def _raw(texts, key):
    section, name = key.split(".")
    return texts._data[section][name]


def test_messages_file_is_in_content():
    assert (CONTENT_DIR / "messages.toml").is_file()
