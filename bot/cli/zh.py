"""typer/click's own words in Chinese (issue 13): help pages, usage lines and usage errors of `relaybot ...`.

One place, through typer's supported extension points: `ZhTyper` is a `typer.Typer` whose groups and commands
are `ZhGroup` and `ZhCommand` (typer's `cls=`). Those write the help page themselves, as plain lines that are never
wrapped or cut ("…"), whatever COLUMNS or the terminal says, so every option's full help is there when piped;
and the group's `main()` shows click's usage errors in Chinese with the command's usage line, exit code 2.
The pinned typer (0.29) carries its own copy of click, whose messages are f-strings (no gettext to translate), so
errors are told by their exception class and fields, not by rewording the English text.
"""

from __future__ import annotations

import inspect
import re
import sys
import unicodedata
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import typer
from typer import _click
from typer._click import exceptions as click_errors
from typer.core import TyperArgument, TyperCommand, TyperGroup, TyperOption

from bot.config import problem_text
from bot.content import load_texts

HELP_OPTION_NAMES = ["-h", "--help"]


def _t(key: str, **values: object) -> str:
    return load_texts().t(f"cli_zh.{key}", **values)


class ZhTyper(typer.Typer):
    """A typer.Typer whose help and usage errors are in Chinese; `-h` works as well as `--help`."""

    def __init__(self, **kwargs: Any) -> None:
        kwargs.setdefault("cls", ZhGroup)
        settings = dict(kwargs.pop("context_settings", None) or {})
        settings.setdefault("help_option_names", HELP_OPTION_NAMES)
        super().__init__(context_settings=settings, **kwargs)

    def command(self, name: str | None = None, *, cls: type[TyperCommand] | None = None, **kwargs: Any) -> Any:
        """typer's command decorator; the command is a ZhCommand unless another class is asked for."""
        return super().command(name, cls=cls or ZhCommand, **kwargs)


class _ZhHelp:
    """What ZhCommand and ZhGroup share: the help page, the usage line, and usage errors that know their command."""

    options_metavar: str | None
    help: str | None
    epilog: str | None

    def get_help_option(self, ctx: _click.Context) -> TyperOption | None:
        option = super().get_help_option(ctx)  # type: ignore[misc]
        if option is not None:
            option.help = _t("help_option")
        return option

    def format_usage(self, ctx: _click.Context, formatter: _click.HelpFormatter) -> None:
        pieces = usage_pieces(self, ctx)  # type: ignore[arg-type]
        formatter.write(f"{_t('usage')}{ctx.command_path} {' '.join(pieces)}".rstrip() + "\n")

    def format_help(self, ctx: _click.Context, formatter: _click.HelpFormatter) -> None:
        formatter.write(help_page(self, ctx))  # type: ignore[arg-type]

    def parse_args(self, ctx: _click.Context, args: list[str]) -> list[str]:
        try:
            return super().parse_args(ctx, args)  # type: ignore[misc]
        except click_errors.UsageError as exc:
            # click's parser raises some errors ("requires an argument") without the context: add it, so that the
            # error shows this command's usage line.
            if exc.ctx is None:
                exc.ctx, exc.cmd = ctx, ctx.command
            raise


class ZhCommand(_ZhHelp, TyperCommand):
    """A typer command whose help page and usage line are in Chinese."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        kwargs["options_metavar"] = _t("options_metavar")
        super().__init__(*args, **kwargs)


class ZhGroup(_ZhHelp, TyperGroup):
    """A typer group whose help, usage and usage errors are in Chinese."""

    def __init__(self, **kwargs: Any) -> None:
        kwargs["options_metavar"] = _t("options_metavar")
        kwargs["subcommand_metavar"] = _t("subcommand_metavar")
        super().__init__(**kwargs)

    def resolve_command(
        self, ctx: _click.Context, args: list[str]
    ) -> tuple[str | None, _click.Command | None, list[str]]:
        if args and self.get_command(ctx, args[0]) is None and not args[0].startswith("-"):
            from difflib import get_close_matches

            close = get_close_matches(args[0], list(self.commands), n=3)
            message = (
                _t("no_such_command_suggest", command=args[0], suggestions="、".join(close))
                if close
                else _t("no_such_command", command=args[0])
            )
            raise click_errors.UsageError(message, ctx)
        return super().resolve_command(ctx, args)

    def invoke(self, ctx: _click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except click_errors.UsageError as exc:
            if exc.message == "Missing command." and exc.ctx is ctx:
                exc.message = _t("missing_command")
            raise

    def main(
        self,
        args: Sequence[str] | None = None,
        prog_name: str | None = None,
        complete_var: str | None = None,
        standalone_mode: bool = True,
        windows_expand_args: bool = True,
        **extra: Any,
    ) -> Any:
        """typer's main; in standalone mode (the `relaybot` script) errors are shown in Chinese here."""
        if not standalone_mode:
            return super().main(args, prog_name, complete_var, False, windows_expand_args, **extra)
        try:
            result = super().main(args, prog_name, complete_var, False, windows_expand_args, **extra)
        except click_errors.NoArgsIsHelpError as exc:
            _click.echo(help_page(exc.ctx.command, exc.ctx), nl=False)  # (like typer: on stdout)
            sys.exit(exc.exit_code)
        except click_errors.ClickException as exc:
            show_error(exc)
            sys.exit(exc.exit_code)
        except (typer.Abort, KeyboardInterrupt):
            _click.echo(_t("aborted"), err=True)
            sys.exit(1)
        except Exception:  # a fault of the program: a Chinese line for the person, the traceback in a file
            _click.echo(_t("crashed", path=_keep_traceback()), err=True)
            sys.exit(1)
        # Without standalone mode, typer returns a typer.Exit's code (and a command's return value: None here).
        sys.exit(result if isinstance(result, int) else 0)


def _keep_traceback() -> str:
    """Write the exception being handled to a file in the temp folder; its path (or "-" when none can be written)."""
    import tempfile
    import traceback
    from datetime import datetime

    text = traceback.format_exc()
    try:
        with tempfile.NamedTemporaryFile(
            "w",
            encoding="utf-8",
            prefix=f"relaybot-error-{datetime.now():%Y%m%d-%H%M%S}-",
            suffix=".txt",
            delete=False,
        ) as fh:
            fh.write(text)
            return fh.name
    except OSError:
        sys.stderr.write(text)  # nowhere to keep it: the engineer still needs it
        return "-"


def usage_pieces(command: _click.Command, ctx: _click.Context) -> list[str]:
    """[选项], then each argument (FILE; [NAME] when optional), then 命令 [参数]... for a group."""
    pieces = [command.options_metavar] if command.options_metavar else []
    for param in command.get_params(ctx):
        if isinstance(param, TyperArgument):
            name = param.display_name_raw.upper() + ("..." if param.nargs != 1 else "")
            pieces.append(name if param.required else f"[{name}]")
    if isinstance(command, TyperGroup):
        pieces.append(command.subcommand_metavar)
    return pieces


def help_page(command: _click.Command, ctx: _click.Context) -> str:
    """The whole help page of `command`: usage, its help, arguments, options, subcommands. No line is wrapped."""
    usage = command.get_usage(ctx)
    lines = [usage, ""]
    text = inspect.cleandoc(command.help or "").partition("\f")[0].strip()
    if text:
        lines += [text, ""]
    params = [p for p in command.get_params(ctx) if not getattr(p, "hidden", False)]
    arguments = [p for p in params if isinstance(p, TyperArgument)]
    options = [p for p in params if not isinstance(p, TyperArgument)]
    for title, rows in (
        (_t("arguments"), [_argument_row(p, ctx) for p in arguments]),
        (_t("options"), [_option_row(p, ctx) for p in options]),
        (_t("commands"), _command_rows(command, ctx)),
    ):
        if rows:
            width = max(_width(name) for name, _ in rows)
            lines.append(title)
            lines += [f"  {name}{' ' * (width - _width(name))}  {help_text}".rstrip() for name, help_text in rows]
            lines.append("")
    if command.epilog:
        lines += [inspect.cleandoc(command.epilog), ""]
    return "\n".join(lines)


def _width(text: str) -> int:
    """Columns `text` takes in a terminal: a Chinese character takes two."""
    return sum(2 if unicodedata.east_asian_width(ch) in "WF" else 1 for ch in text)


def _one_line(text: str | None) -> str:
    """Help written over several lines in the source, as one line (a person's help is never cut)."""
    return " ".join(part.strip() for part in inspect.cleandoc(text or "").splitlines() if part.strip())


def _extras(param: _click.Parameter, ctx: _click.Context) -> str:
    out = ""
    if param.required:
        out += _t("required")
    elif isinstance(param, (TyperOption, TyperArgument)) and not getattr(param, "is_flag", False):
        default = param._extract_default_help_str(ctx=ctx)
        if default not in (None, "", False, [], ()) and not callable(default) and param.show_default is not False:
            out += _t("default", value=default)
    return out


def _kind(param: _click.Parameter) -> str:
    """The kind of value an option takes, in Chinese ("" for a switch)."""
    if getattr(param, "is_flag", False) or getattr(param, "count", False):
        return ""
    descriptor = getattr(param, "type_descriptor", None)
    annotation = getattr(descriptor, "annotation", None)
    if getattr(descriptor, "is_choice", False) and getattr(descriptor, "choices", None):
        return "|".join(str(getattr(c, "value", c)) for c in descriptor.choices)  # type: ignore[union-attr]
    if getattr(descriptor, "is_path", False) or annotation is Path:
        return _t("kind_path")
    if getattr(descriptor, "is_file", False):
        return _t("kind_file")
    names = {int: "kind_integer", float: "kind_number", str: "kind_text"}
    return _t(names.get(annotation, "kind_value"))  # type: ignore[arg-type]


def _option_row(param: _click.Parameter, ctx: _click.Context) -> tuple[str, str]:
    names = ", ".join([*sorted(param.opts, key=len), *param.secondary_opts])
    kind = _kind(param)
    return (f"{names} {kind}" if kind else names), _one_line(getattr(param, "help", None)) + _extras(param, ctx)


def _argument_row(param: TyperArgument, ctx: _click.Context) -> tuple[str, str]:
    return param.display_name_raw.upper(), _one_line(param.help) + _extras(param, ctx)


def _command_rows(command: _click.Command, ctx: _click.Context) -> list[tuple[str, str]]:
    if not isinstance(command, TyperGroup):
        return []
    rows = []
    for name in command.list_commands(ctx):
        sub = command.get_command(ctx, name)
        if sub is not None and not sub.hidden:
            first = inspect.cleandoc(sub.short_help or sub.help or "").split("\n\n")[0]
            rows.append((name, _one_line(first)))
    return rows


# ---- usage errors ------------------------------------------------------------------------------------------------


def show_error(exc: click_errors.ClickException) -> None:
    """Print a click error in Chinese on stderr: the command's usage and where to find help first, if known."""
    ctx = getattr(exc, "ctx", None)
    if ctx is not None:
        _click.echo(ctx.get_usage(), err=True)
        if ctx.command.get_help_option(ctx) is not None:
            _click.echo(_t("try_help", command=ctx.command_path, option=ctx.help_option_names[-1]), err=True)
    _click.echo(_t("error", message=error_message(exc)), err=True)


def _param_name(param: Any) -> str:
    if param is None:
        return ""
    if isinstance(param, TyperArgument):
        return param.display_name_raw.upper()
    opts = sorted(getattr(param, "opts", []), key=len, reverse=True)
    return opts[0] if opts else str(param.name)


def _hint(exc: click_errors.BadParameter) -> str:
    if exc.param_hint is not None:
        hint = exc.param_hint
        return " / ".join(hint) if not isinstance(hint, str) else hint.strip("'\"")
    return _param_name(exc.param)


_REQUIRES = re.compile(r"requires (?:an argument|(\d+) arguments)")
_TAKES = re.compile(r"Argument '(.+)' takes (\d+) values")
_EXTRA = re.compile(r"^Got unexpected extra argument(?:s|\(s\))? \((.*)\)$", re.S)


def error_message(exc: click_errors.ClickException) -> str:
    """What is wrong, in Chinese, by the exception's class and fields."""
    message = exc.message
    if isinstance(exc, click_errors.NoSuchOption):
        option = exc.option_name
        if exc.possibilities:
            return _t("no_such_option_suggest", option=option, suggestions="、".join(sorted(exc.possibilities)))
        return _t("no_such_option", option=option)
    if isinstance(exc, click_errors.BadOptionUsage):
        needs = _REQUIRES.search(message)
        if needs and needs.group(1):
            return _t("option_needs_values", option=exc.option_name, n=needs.group(1))
        if needs:
            param = _find_option(exc, exc.option_name)
            help_text = _one_line(getattr(param, "help", None))
            return _t(
                "option_needs_value",
                option=exc.option_name,
                help=_t("missing_hint", help=help_text) if help_text else "",
            )
        return _t("option_takes_no_value", option=exc.option_name)
    if isinstance(exc, click_errors.MissingParameter):
        param = exc.param
        help_text = _one_line(getattr(param, "help", None))
        hint = _t("missing_hint", help=help_text) if help_text else ""
        key = "missing_argument" if isinstance(param, TyperArgument) else "missing_option"
        return _t(key, name=_hint(exc), help=hint)
    if isinstance(exc, click_errors.BadParameter):
        return _bad_value(exc)
    if isinstance(exc, click_errors.BadArgumentUsage):
        takes = _TAKES.search(message)
        if takes:
            return _t("argument_values", name=takes.group(1).upper(), n=takes.group(2))
    if isinstance(exc, click_errors.FileError):
        return _t("file_error", file=exc.ui_filename)
    extra = _EXTRA.match(message)
    if extra:
        return _t("extra_arguments", args=extra.group(1))
    if _has_chinese(message):  # ours (no such command, missing command) or a command's own
        return message
    return _t("other", message=message)


def _has_chinese(text: str) -> bool:
    return any("\u4e00" <= ch <= "\u9fff" for ch in text)


def _find_option(exc: click_errors.UsageError, name: str) -> _click.Parameter | None:
    ctx = exc.ctx
    if ctx is None:
        return None
    return next((p for p in ctx.command.get_params(ctx) if name in (*p.opts, *p.secondary_opts)), None)


def _bad_value(exc: click_errors.BadParameter) -> str:
    name = _hint(exc)
    cause: Any = exc.__cause__  # typer's pydantic ValidationError, when its coercion failed
    errors = cause.errors(include_url=False) if hasattr(cause, "errors") else []
    if errors:
        error = errors[0]
        problem = problem_text(error)
        if "input" in error:
            return _t("bad_value", name=name, value=error["input"], problem=problem)
        return _t("bad_value_no_input", name=name, problem=problem)
    if _has_chinese(exc.message):  # a command's own check (typer.BadParameter("...")) is already in Chinese
        return _t("bad_value_no_input", name=name, problem=exc.message)
    value = re.match(r"^Value (.+) is not a valid (\w+)", exc.message)
    problem = problem_text({"type": "value_error"})
    if value:
        return _t("bad_value", name=name, value=value.group(1).strip("'\""), problem=problem)
    return _t("bad_value_no_input", name=name, problem=problem)
