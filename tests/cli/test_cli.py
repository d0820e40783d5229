"""The command line: the demo and the console mode, run as a new user would run them."""

from __future__ import annotations

import subprocess
import sys
import threading

from tests.bot_process import ROOT, relaybot
from tests.gateway_harness import wait_until


def run(args, tmp_path, db_url, stdin=None):
    return relaybot(*args, db_url=db_url, cwd=tmp_path, stdin=stdin)


def test_demo_shows_the_whole_loop(tmp_path, db_url):
    result = run(["demo"], tmp_path, db_url)
    assert result.returncode == 0, result.stderr
    out = result.stdout
    assert "【反诈预警 #1】" in out
    assert "@路人甲 您还不在联络员名单里" in out
    assert "✅ 已记录 #1：城关镇、东城街道、区教育局、西湖镇（本次 4 个单位）。目前已确认 4/6。" in out
    assert "该指令仅限反诈办管理员使用。" in out
    assert "@吴刚 @郑洁 ⏰ 转发提醒：以下单位还未确认转发" in out
    assert "已在 1 个联络员群提醒 #1 的 2 个未确认单位（@ 2 人）。" in out
    assert "已截止：确认 5/6。\n      未转发（1）：区卫健局" in out
    assert "📊 反诈预警转发日报（11月26日）" in out and "[文件] 反诈预警转发日报（11月26日）.xlsx" in out
    # 精准滴灌: the roster gains tags; a push to the banks reaches one unit and counts only it.
    assert "区教育局（标签 无→学校）" in out
    assert "对象：银行（1 个单位），只统计这些单位。" in out and "本条请以下单位转发：银行（金融行业）" in out
    # Reach: 郑洁 brings the bot into her unit's own group; forwarding #2 there confirms it with no word, and the
    # group's 46 people are the unit's 覆盖人数 in 进度 and in the report's ranking sheet.
    assert "[金融行业反诈宣传群] 反诈助手: 大家好，我是区反诈办的预警转发助手" in out
    assert "✅ 已记录 #2" not in out and "已确认 1/1" in out
    assert "单位群看到转发：1 个单位，覆盖 46 人" in out and "单位群覆盖人数：46 人（1 个单位）" in out
    assert "      单位 | 收到 | 按时 | 未转发 | 覆盖人数\n" in out and "      金融行业 | 2 | 2 | 0 | 46\n" in out


def test_console_mode_lets_you_play_admin_and_liaison(tmp_path, db_url):
    imported = run(["roster", "import", str(ROOT / "content" / "examples" / "roster_example.csv")], tmp_path, db_url)
    assert imported.returncode == 0, imported.stderr
    script = (
        "\n".join(
            [
                "/room 反诈办工作群（控制台）",
                "推送 刷单",
                "/room 联络员群（控制台）",
                "/as 王芳-城关镇",
                "已转发",
                "/as 路人甲",
                "推送 刷单",
                "/as 反诈办管理员",
                "/room 反诈办工作群（控制台）",
                "进度",
                "/quit",
            ]
        )
        + "\n"
    )
    result = run(["run", "--console"], tmp_path, db_url, stdin=script)
    assert result.returncode == 0, result.stderr
    out = result.stdout
    assert "[联络员群（控制台）] 反诈助手: 【反诈预警 #1】" in out
    assert "[联络员群（控制台）] 反诈助手: 该指令仅限反诈办管理员使用。" in out
    assert "已确认 1/6" in out and "未确认（5）：东城街道、西湖镇、区教育局、区卫健局、金融行业" in out


def test_console_with_a_moved_clock_shows_reminders_deadline_and_summary(tmp_path, db_url):
    imported = run(["roster", "import", str(ROOT / "content" / "examples" / "roster_example.csv")], tmp_path, db_url)
    assert imported.returncode == 0, imported.stderr
    # At 3600x the bot's clock passes 10:00, 16:00, the 18:00 deadline and the 18:30 summary in about fifteen seconds;
    # it starts at 04:00 so that the push is in before the 10:00 reminder even when starting the bot (and copying
    # the database for the trial) takes a few real seconds on a loaded machine (at 09:00 it had one second);
    # the test reads what the console prints until the summary's chart is there (on a busy machine that takes
    # longer, which must not matter), then quits.
    env = {"PATH": "/usr/bin:/bin", "PYTHONPATH": str(ROOT), "RELAYBOT_DATABASE_URL": db_url}
    proc = subprocess.Popen(
        [sys.executable, "-m", "bot", "run", "--console", "--clock", "2026-11-26 04:00", "--speed", "3600"],
        cwd=tmp_path,
        env=env,
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    lines: list[str] = []
    reader = threading.Thread(target=lambda: lines.extend(proc.stdout), daemon=True)
    reader.start()
    proc.stdin.write("/room 反诈办工作群（控制台）\n推送 刷单\n")
    proc.stdin.flush()
    chart = "[图片] 反诈预警转发日报（11月26日）.png"
    try:
        wait_until(lambda: list(lines), lambda seen: any(chart in line for line in seen), 120, "the daily summary")
    finally:
        proc.stdin.write("/quit\n")
        proc.stdin.close()
        proc.wait(timeout=60)
    reader.join(timeout=10)
    out = "".join(lines[: next(i for i, line in enumerate(lines) if chart in line) + 1])
    assert proc.returncode == 0, proc.stderr.read()
    assert out.count("⏰ 转发提醒") == 2
    assert "#1「警惕刷单返利：先给小甜头，再骗大本金」已截止：确认 0/6。" in out
    assert "📊 反诈预警转发日报（11月26日）" in out
    assert "[文件] 反诈预警转发日报（11月26日）.xlsx" in out
