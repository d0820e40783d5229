"""`relaybot ...` speaks Chinese in typer/click's own words too: help pages, usage lines, usage errors (issue 13)."""

from __future__ import annotations

import inspect
import re
import unicodedata
from pathlib import Path

import pytest
from typer.core import TyperArgument, TyperGroup
from typer.main import get_command
from typer.testing import CliRunner

from bot.cli.main import app
from tests.bot_process import relaybot

# typer's and click's English, as it appeared before (help, panels, errors), and their type labels.
BOILERPLATE = re.compile(
    r"Usage|Options|Commands|Arguments|Show this message|and exit|\[required\]|default:|env var|Try '|Error|"
    r"Missing|No such|Invalid value|Got unexpected|Aborted|Did you mean|Possible options|requires an? |"
    r"<bool>|<str>|<path>|<float>|<int>|\(deprecated\)|OPTIONS|COMMAND|ARGS"
)


def _commands(command=None, path=()):
    """(path, click command) for the app, every group and every command under it."""
    command = command or get_command(app)
    yield path, command
    if isinstance(command, TyperGroup):
        for name, sub in command.commands.items():
            yield from _commands(sub, (*path, name))


COMMANDS = list(_commands())


def _columns(line: str) -> int:
    return sum(2 if unicodedata.east_asian_width(ch) in "WF" else 1 for ch in line)


def _invoke(args):
    return CliRunner().invoke(app, args, prog_name="relaybot")


def _ids(item):
    return " ".join(item[0]) or "relaybot"


def _help_texts(command) -> list[str]:
    """Every sentence a command's help page must show whole: its help, each parameter's, each subcommand's."""
    texts = [inspect.cleandoc(command.help or "")]
    texts += [p.help for p in command.params if getattr(p, "help", None)]
    if isinstance(command, TyperGroup):
        texts += [inspect.cleandoc(sub.help or "").split("\n\n")[0] for sub in command.commands.values()]
    return [" ".join(t.split("\n")) for t in texts if t]


def _leftover_english(output: str, command, path) -> list[str]:
    """ASCII words in a help page that are not the command's own names and sentences."""
    rest = " ".join(output.split())
    for text in sorted(_help_texts(command), key=len, reverse=True):
        rest = rest.replace(" ".join(text.split()), "")
    names = {"relaybot", *path}
    for param in command.params:
        names.update(opt.lstrip("-") for opt in (*param.opts, *param.secondary_opts))
        if isinstance(param, TyperArgument):
            names.add(param.display_name_raw.upper())
    if isinstance(command, TyperGroup):
        names.update(command.commands)
    words = re.findall(r"[A-Za-z][A-Za-z_-]+", rest)
    return [w for w in words if w not in names and w.lower() not in names and w not in ("h", "help")]


@pytest.mark.parametrize(("path", "command"), COMMANDS, ids=[_ids(c) for c in COMMANDS])
@pytest.mark.parametrize("flag", ["--help", "-h"])
def test_every_help_page_is_chinese_and_whole(path, command, flag):
    result = _invoke([*path, flag])
    assert result.exit_code == 0, result.output
    out = result.stdout
    assert out.startswith(f"用法：relaybot {' '.join(path)}".replace("  ", " ").rstrip())
    assert "显示本帮助并退出" in out and "-h, --help" in out
    assert not BOILERPLATE.search(out), out
    assert "…" not in out
    flat = " ".join(out.split())  # a help written over two lines in the source may keep its line break
    for text in _help_texts(command):
        assert " ".join(text.split()) in flat, f"{text!r} is not whole in:\n{out}"
    assert _leftover_english(out, command, path) == [], out


def test_help_is_whole_in_a_narrow_terminal_and_in_a_pipe(tmp_path):
    """COLUMNS=60, output piped (not a terminal): no line is wrapped or cut, every help sentence is there whole."""
    db = f"sqlite:///{tmp_path / 'x.db'}"
    for path in ((), ("run",), ("report",), ("doctor",), ("roster", "import")):
        done = relaybot(*path, "--help", db_url=db, cwd=tmp_path, COLUMNS="60")
        assert done.returncode == 0, done.stderr
        command = dict(COMMANDS)[path]
        for text in _help_texts(command):
            assert text in done.stdout, f"{text!r} cut in:\n{done.stdout}"
        assert "…" not in done.stdout and not BOILERPLATE.search(done.stdout)
        assert any(_columns(line) > 60 for line in done.stdout.splitlines())  # long lines stay long: never wrapped


def test_a_missing_option_value_is_told_in_chinese_with_the_usage_and_exit_2(tmp_path):
    done = relaybot("report", "--day", "--out", db_url=f"sqlite:///{tmp_path / 'x.db'}", cwd=tmp_path)
    assert done.returncode == 2
    assert done.stderr.splitlines() == [
        "用法：relaybot report [选项]",
        "查看帮助：relaybot report --help",
        "错误：选项 --out 后面要写一个值：输出的 .xlsx 文件；同名 .png 图表写在旁边",
    ]
    assert done.stdout == ""


@pytest.mark.parametrize(
    ("args", "usage", "error"),
    [
        (["report", "--bogus"], "relaybot report [选项]", "没有 --bogus 这个选项，是不是 --out？"),
        (["report", "--dya"], "relaybot report [选项]", "没有 --dya 这个选项，是不是 --date、--day？"),
        (["-x"], "relaybot [选项] 命令 [参数]...", "没有 -x 这个选项"),
        (["repot"], "relaybot [选项] 命令 [参数]...", "没有 repot 这个命令，是不是 report？"),
        (["nothing-like-it"], "relaybot [选项] 命令 [参数]...", "没有 nothing-like-it 这个命令"),
        (["units", "城关镇", "多余"], "relaybot units [选项] [NAME]", "多余的内容：多余"),
        (["run", "--speed", "快"], "relaybot run [选项]", "--speed 的值 快 不对：应为数字"),
        (["doctor", "--timeout", "x"], "relaybot doctor [选项]", "--timeout 的值 x 不对：应为数字"),
        (["roster", "import"], "relaybot roster import [选项] FILE", "缺少参数 FILE：.xlsx 或 .csv"),
        (["push"], "relaybot push [选项] CASE_TYPE", "缺少参数 CASE_TYPE：案件类型或简称"),
        (["report", "--day"], "relaybot report [选项]", "缺少必填的选项 --out：输出的 .xlsx 文件"),
        (["report", "--run", "--help"], "relaybot report [选项]", "没有 --run 这个选项"),
        (["db", "--out"], "relaybot db [选项] 命令 [参数]...", "没有 --out 这个选项"),
    ],
)
def test_usage_errors_are_chinese_with_the_usage_and_exit_2(args, usage, error):
    result = _invoke(args)
    assert result.exit_code == 2, result.output
    lines = result.stderr.splitlines()
    assert lines[0] == "用法：" + usage
    assert lines[1].startswith("查看帮助：relaybot")
    assert lines[2].startswith("错误：" + error), lines
    assert not BOILERPLATE.search(result.stderr), result.stderr
    assert "Traceback" not in result.output


@pytest.mark.parametrize("args", [[], ["roster"], ["stats"], ["db"]])
def test_a_group_without_a_command_shows_its_chinese_help(args):
    result = _invoke(args)
    assert result.exit_code == 2
    assert result.stdout.startswith("用法：relaybot") and "命令：" in result.stdout
    assert not BOILERPLATE.search(result.stdout)


def _crashing_app():
    from bot.cli.zh import ZhTyper

    crash = ZhTyper(name="relaybot")

    @crash.command()
    def boom() -> None:
        raise RuntimeError("a fault in the program")

    @crash.command()
    def stop() -> None:
        raise KeyboardInterrupt

    return get_command(crash)


def test_a_fault_in_the_program_is_one_chinese_line_and_the_traceback_goes_to_a_file(capsys):
    with pytest.raises(SystemExit) as exited:
        _crashing_app().main(["boom"], prog_name="relaybot")
    assert exited.value.code == 1
    err = capsys.readouterr().err
    assert "Traceback" not in err and "RuntimeError" not in err
    assert err.startswith("出错了：程序内部错误")
    path = Path(re.search(r"已写入 (\S+?)，", err).group(1))
    try:
        kept = path.read_text(encoding="utf-8")
        assert "Traceback" in kept and "RuntimeError: a fault in the program" in kept
    finally:
        path.unlink()


def test_ctrl_c_in_a_command_shows_no_traceback_and_no_english(capsys):
    with pytest.raises(SystemExit) as exited:
        _crashing_app().main(["stop"], prog_name="relaybot")
    assert exited.value.code in (1, 130)  # (130: what a shell reports for Ctrl-C)
    err = capsys.readouterr().err
    assert "Traceback" not in err and "Abort" not in err and "KeyboardInterrupt" not in err
