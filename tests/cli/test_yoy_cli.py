"""`relaybot stats import` on a moved clock: last year's figures, then this year's by day, and the 6月30日 通报."""

from __future__ import annotations

from datetime import UTC, datetime

from tests.bot_process import relaybot

LAST_YEAR = "镇街,周期,案件类型,警情数\n城关镇,2026-W26,,3\n东城街道,2026-W26,,2\n"
# Year-less days: on the moved clock (1 July 2027) 6月30日 is 2027-06-30, in 2027-W26; on the real one it is not.
THIS_YEAR = (
    "镇街,日期,案件类型,警情数\n城关镇,6月22日,,5\n城关镇,6月30日,,2\n东城街道,6月22日,,1\n东城街道,6月30日,,4\n"
)
RULE = "6月30日节点（目标：发案数环比、同比下降）"


def test_cli_imports_last_year_and_the_checkpoint_report_names_who_missed(db_url, tmp_path):
    offset = datetime(2027, 7, 1, 2, 0, tzinfo=UTC) - datetime.now(UTC)
    env = {"RELAYBOT_CLOCK_OFFSET_SECONDS": str(offset.total_seconds())}
    last, this = tmp_path / "去年第26周.csv", tmp_path / "今年6月.csv"
    last.write_text(LAST_YEAR, encoding="utf-8")
    this.write_text(THIS_YEAR, encoding="gbk")  # as Excel on a Chinese Windows saves it

    first = relaybot("stats", "import", str(last), db_url=db_url, cwd=tmp_path, **env)
    assert first.returncode == 0, first.stderr
    assert "没有去年的警情数据" not in first.stdout  # 2026-W26 holds no checkpoint

    result = relaybot("stats", "import", str(this), db_url=db_url, cwd=tmp_path, **env)
    assert result.returncode == 0, result.stderr
    out = result.stdout
    assert "周期：2027-W25、2027-W26" in out
    assert "📈 电诈警情通报 2027年第26周（6月28日—7月4日）" in out
    assert "1. 东城街道 4 起（环比 +3，同比 +100%）" in out
    assert "2. 城关镇 2 起（环比 -3，同比 -33.3%）" in out
    assert f"📌 {RULE}未达到，需书面说明：东城街道" in out

    again = relaybot("stats", "import", str(last), db_url=db_url, cwd=tmp_path, **env)
    assert again.returncode == 0, again.stderr
    assert "数据没有变化（2 条）" in again.stdout and "不另发通报" in again.stdout
    assert "📈" not in again.stdout

    moved = relaybot(
        "stats", "import", str(this), db_url=db_url, cwd=tmp_path, RELAYBOT_INCIDENT_CHECKPOINTS="07-02", **env
    )
    assert moved.returncode == 0, moved.stderr
    assert "📌 7月2日节点" in moved.stdout and RULE not in moved.stdout
