"""``msgbridge webhook verify``: check a captured webhook request, for support cases.

Give it the raw body exactly as received (a file, or ``-`` for stdin), the request's
headers, and the adapter's verifier options; it says whether the signature verifies and,
if not, exactly why (missing header, malformed signature, stale timestamp, wrong key or
secret, re-serialised body). Secrets come only from environment variables
(``--option-env client_secret=APP_CLIENT_SECRET``), never from the command line.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import sys
from pathlib import Path
from typing import Annotated, Any

import typer

from msgbridge.cli._common import (
    CliError,
    ExitCode,
    JsonOption,
    handle_errors,
    out_console,
    print_json,
)
from msgbridge.inbound import Headers, WebhookRejected, verifier_for
from msgbridge.inbound.serialization import event_to_json
from msgbridge.registry import AdapterRegistry

__all__ = ["webhook_app"]

webhook_app = typer.Typer(
    help="Receiving webhooks: check captured requests against a key or secret.",
    no_args_is_help=True,
    rich_markup_mode=None,
)


def _read_body(path: str) -> bytes:
    if path == "-":
        return sys.stdin.buffer.read()
    return Path(path).read_bytes()


def _header_lines(lines: list[str]) -> list[tuple[str, str]]:
    result = []
    for line in lines:
        if not line.strip():
            continue
        name, sep, value = line.partition(":")
        if not sep or not name.strip():
            raise CliError(f"a header must look like 'Name: value', got {line[:60]!r}")
        result.append((name.strip(), value.strip()))
    return result


def _value(text: str) -> Any:
    try:
        return json.loads(text)
    except ValueError:
        return text


def _options(options: list[str], from_env: list[str]) -> dict[str, Any]:
    result: dict[str, Any] = {}
    for item in options:
        key, sep, value = item.partition("=")
        if not sep or not key:
            raise CliError(f"--option takes key=value, got {item!r}")
        result[key] = _value(value)
    for item in from_env:
        key, sep, name = item.partition("=")
        if not sep or not key or not name:
            raise CliError(f"--option-env takes key=ENV_VAR, got {item!r}")
        if name not in os.environ:
            raise CliError(f"environment variable {name} is not set", ExitCode.CONFIG)
        result[key] = os.environ[name]
    return result


@webhook_app.command("verify")
@handle_errors
def verify(
    adapter: Annotated[
        str, typer.Option("--adapter", "-a", help="Adapter id (see `msgbridge adapters`).")
    ],
    body: Annotated[str, typer.Option("--body", help="Raw body file as received ('-': stdin).")],
    header: Annotated[
        list[str] | None, typer.Option("--header", "-H", help="A request header 'Name: value'.")
    ] = None,
    headers_file: Annotated[
        Path | None, typer.Option("--headers-file", help="File of 'Name: value' header lines.")
    ] = None,
    option: Annotated[
        list[str] | None,
        typer.Option(
            "--option",
            "-o",
            help="Verifier option key=value (public_key=..., "
            "legacy_rsa=true, public_url=..., tolerance_seconds=300).",
        ),
    ] = None,
    option_env: Annotated[
        list[str] | None,
        typer.Option(
            "--option-env",
            help="Verifier option from an environment variable, "
            "key=ENV_VAR (for secrets: client_secret, secret).",
        ),
    ] = None,
    method: Annotated[str, typer.Option(help="The request's HTTP method.")] = "POST",
    at: Annotated[
        str | None,
        typer.Option(
            help="Verify as of this ISO 8601 time (when the request was captured) instead of now."
        ),
    ] = None,
    as_json: JsonOption = False,
) -> None:
    """Verify a captured webhook request; exit 0 if it verifies, 1 if it is refused."""
    lines = list(header or [])
    if headers_file is not None:
        lines.extend(headers_file.read_text().splitlines())
    headers = Headers(_header_lines(lines))
    raw = _read_body(body)
    if at is None:
        now = dt.datetime.now(dt.timezone.utc)
    else:
        try:
            now = dt.datetime.fromisoformat(at.replace("Z", "+00:00"))
        except ValueError:
            raise CliError("--at must be an ISO 8601 time such as 2026-12-04T12:00:00Z") from None
        if now.utcoffset() is None:
            now = now.replace(tzinfo=dt.timezone.utc)
    registry = AdapterRegistry.from_entry_points()
    verifier = verifier_for(registry, adapter, _options(option or [], option_env or []))
    try:
        event = verifier.verify(headers, raw, now, method=method.upper())
    except WebhookRejected as exc:
        if as_json:
            print_json(
                {
                    "verified": False,
                    "status": exc.response_status,
                    "error": type(exc).__name__,
                    "reason": exc.message,
                    "header": exc.header,
                }
            )
        else:
            out_console().print(
                f"refused ({exc.response_status} {type(exc).__name__}): {exc.message}",
                markup=False,
            )
        raise typer.Exit(int(ExitCode.FAILED)) from None
    if as_json:
        data = event_to_json(event)
        data.pop("raw", None)
        if isinstance(data.get("outbound"), dict):
            data["outbound"].pop("raw", None)
        print_json({"verified": True, "event": data})
        return
    out_console().print(
        f"verified: {event.adapter} {event.event_type} ({event.kind.value}), de-duplication "
        f"key {event.dedup_key}, {len(raw)} bytes",
        markup=False,
    )
