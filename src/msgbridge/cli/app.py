"""The ``msgbridge`` command: the typer application and its ``main()`` entry point."""

from __future__ import annotations

import sys
from typing import Annotated

import typer

from msgbridge import __version__
from msgbridge.cli._common import (
    EXIT_CODES_HELP,
    VerboseOption,
    configure_logging,
    error_line,
    reset_verbosity,
)
from msgbridge.cli.adapters_cmd import adapters
from msgbridge.cli.config_cmd import config_app
from msgbridge.cli.demo_cmd import demo
from msgbridge.cli.emulate_cmd import emulate
from msgbridge.cli.outbox_cmd import outbox_app
from msgbridge.cli.push_cmd import push
from msgbridge.cli.send_cmd import conversation, send
from msgbridge.cli.webhook_cmd import webhook_app

__all__ = ["app", "main"]

HELP = f"""Report message delivery status to CRMs (every installed adapter: `msgbridge adapters`).

Connections come from a TOML config file (--config, $MSGBRIDGE_CONFIG, or
./msgbridge.toml); secrets only by reference to environment variables. Run
`msgbridge config --format` for the format and `msgbridge demo` to see everything
work against the built-in emulator, with no credentials and no network.

{EXIT_CODES_HELP}
"""

app = typer.Typer(
    name="msgbridge",
    help=HELP,
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
    pretty_exceptions_show_locals=False,
    rich_markup_mode=None,
    context_settings={"help_option_names": ["-h", "--help"]},
)


def _version(value: bool) -> None:
    if value:
        typer.echo(f"msgbridge {__version__}")
        raise typer.Exit()


@app.callback()
def _root(
    verbose: VerboseOption = False,
    version: Annotated[
        bool,
        typer.Option(
            "--version", callback=_version, is_eager=True, help="Print the version and exit."
        ),
    ] = False,
) -> None:
    reset_verbosity()
    configure_logging(verbose)


app.command("adapters")(adapters)
app.add_typer(config_app, name="config")
app.command("send")(send)
app.command("conversation")(conversation)
app.command("push")(push)
app.command("emulate")(emulate)
app.command("demo")(demo)
app.add_typer(outbox_app, name="outbox")
app.add_typer(webhook_app, name="webhook")


def main(argv: list[str] | None = None) -> int:
    """Console-script entry point: run the command, return its exit code."""
    try:
        app(args=argv, prog_name="msgbridge")
    except SystemExit as exc:
        code = exc.code
        if code is None:
            return 0
        if isinstance(code, int):
            return code
        error_line(str(code))
        return 1
    return 0


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
