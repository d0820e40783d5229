"""`relaybot verify <单位> <日期> [--out file.xlsx]` (issue 15 item 5): the chat's 核查 on the command line."""

from __future__ import annotations

from datetime import datetime

import openpyxl
import pytest
from typer.testing import CliRunner

from bot.cli.main import app
from tests.conftest import TZ
from tests.reports.test_verify import history  # noqa: F401 - the constructed history, a fixture


@pytest.fixture
def cli(db_url, tmp_path, monkeypatch):
    """`relaybot ...` in this process, in an empty folder, on the test's database, with the clock at 11-26 09:00."""
    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr("bot.clock.real_clock", lambda: datetime(2026, 11, 26, 9, 0, tzinfo=TZ))

    def run(*args: str):
        return CliRunner().invoke(app, list(args), env={"RELAYBOT_DATABASE_URL": db_url})

    return run


def test_verify_prints_the_summary_and_writes_the_xlsx(cli, history, tmp_path):  # noqa: F811
    out = tmp_path / "核查" / "城关镇.xlsx"
    result = cli("verify", "城关镇", "11月20日", "--out", str(out))
    assert result.exit_code == 0, result.output
    assert result.output.splitlines() == [
        "🔎 回访核查：城关镇",
        "2026年8月20日 0:00 至 2026年11月20日 24:00 创建的推送（撤回的不计）",
        "收到 6 条：按时转发 1，迟报 1，未转发 2，补登 1，免转 1。",
        "未转发（2）：",
        f"#{history['missed']}「冒充公检法预警」2026-10-08 09:00 推送",
        f"#{history['on_d']}「网络游戏诈骗预警」2026-11-20 23:59 推送",
        f"已写入 {out}",
    ]
    ws = openpyxl.load_workbook(out)["核查记录"]
    assert ws["A1"].value == "回访核查：城关镇（镇街）"
    assert ws["A2"].value.endswith("制表时间：2026-11-26 09:00；状态按制表时的记录")
    assert ws.freeze_panes == "A5"
    rows = [[c.value for c in r] for r in ws.iter_rows(min_row=5)]
    assert [r[0] for r in rows] == [history[k] for k in ("on_time", "late", "missed", "added", "exempt", "on_d")]
    assert [r[4] for r in rows] == ["已转发", "迟报", "未转发", "补登", "免转", "未转发"]
    assert rows[0][6:9] == ["王芳", "截图", "已核验（标题相符）"]
    assert rows[1][8] == "存疑（截的是联络员群）"


def test_verify_without_out_writes_next_to_where_it_runs(cli, history, tmp_path):  # noqa: F811
    result = cli("verify", "城关", "2026/11/20")
    assert result.exit_code == 0, result.output
    assert (tmp_path / "回访核查_城关镇_2026-11-20.xlsx").exists()


@pytest.mark.parametrize(
    "args,said",
    [
        (("海湖镇", "2026-11-20"), "没有找到单位“海湖镇”。"),
        (("城关镇", "11月32日"), "没看懂日期“11月32日”。"),
        (("城关镇", "2026-12-01"), "“2026-12-01”是2026年12月1日，还没到。"),
    ],
)
def test_bad_input_is_said_in_chinese_and_writes_nothing(cli, history, tmp_path, args, said):  # noqa: F811
    result = cli("verify", *args, "--out", str(tmp_path / "x.xlsx"))
    assert result.exit_code == 1
    assert said in result.output and "Traceback" not in result.output
    assert list(tmp_path.glob("*.xlsx")) == []


def test_a_window_without_pushes_says_no_file_was_written(cli, history, tmp_path):  # noqa: F811
    out = tmp_path / "空.xlsx"
    result = cli("verify", "城关镇", "2025-01-10", "--out", str(out))
    assert result.exit_code == 0, result.output
    assert "这段时间没有推送" in result.output and f"没有推送，不写表格（{out} 未创建）。" in result.output
    assert not out.exists()
