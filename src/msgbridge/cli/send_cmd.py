"""``msgbridge send`` and ``msgbridge conversation``: one update, one receipt."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Annotated

import typer

from msgbridge.bridge import Bridge
from msgbridge.cli._common import (
    CliError,
    ConfigOption,
    ExitCode,
    JsonOption,
    NoGuardOption,
    StateOption,
    VerboseOption,
    cli_guard,
    configure_logging,
    handle_errors,
    out_console,
    print_json,
    receipt_from_error,
    receipt_json,
    receipt_table,
)
from msgbridge.config import load_config
from msgbridge.errors import ConfigurationError, MessagingError
from msgbridge.model import (
    ConversationUpdate,
    DeliveryState,
    MessageStatus,
    Receipt,
    StatusError,
)
from msgbridge.registry import AdapterRegistry

__all__ = ["conversation", "send"]


@contextmanager
def _open(
    config_path: Path | None, name: str, state: Path | None, no_guard: bool
) -> Iterator[Bridge]:
    """A bridge holding only connection *name* (its secrets resolved now), with the guard.

    The config is read and the connection built before the state file is touched, so a
    configuration error is reported as such and creates nothing.
    """
    config = load_config(config_path)
    registry = AdapterRegistry.from_entry_points()
    connection = config.connection(name).build(registry)
    with (
        cli_guard(state, no_guard) as guard,
        Bridge([connection], registry=registry, retry=config.retry, guard=guard) as bridge,
    ):
        yield bridge


def _timestamp(value: str | None) -> dt.datetime | None:
    if value is None:
        return None
    text = value[:-1] + "+00:00" if value.endswith(("Z", "z")) else value
    try:
        when = dt.datetime.fromisoformat(text)
    except ValueError:
        raise CliError(
            f"--occurred-at must be an ISO 8601 timestamp such as 2026-01-31T12:00:00Z, "
            f"got {value!r}"
        ) from None
    if when.tzinfo is None:
        raise CliError("--occurred-at needs a time zone, e.g. 2026-01-31T12:00:00Z")
    return when


def _show(receipt: Receipt, as_json: bool) -> None:
    if as_json:
        print_json(receipt_json(receipt))
    else:
        out_console().print(receipt_table(receipt))
    if not receipt.ok:
        raise typer.Exit(int(ExitCode.FAILED))


@handle_errors
def send(
    connection: Annotated[
        str, typer.Argument(metavar="CONNECTION", help="Connection name from the config file.")
    ],
    message_id: Annotated[
        str, typer.Argument(metavar="MESSAGE_ID", help="The vendor's message id.")
    ],
    state: Annotated[
        DeliveryState,
        typer.Argument(
            metavar="STATE", help="pending, sent, delivered, read or failed (neutral states)."
        ),
    ],
    error_message: Annotated[
        str | None, typer.Option(help="Why the message failed (state 'failed' only).")
    ] = None,
    error_code: Annotated[
        str | None, typer.Option(help="The provider's error code (needs --error-message).")
    ] = None,
    error_kind: Annotated[
        str | None,
        typer.Option(help="The kind of failure, e.g. 'saas' (needs --error-message)."),
    ] = None,
    channel_id: Annotated[
        str | None, typer.Option(help="Channel id (vendors that scope messages by channel).")
    ] = None,
    email_message_id: Annotated[str | None, typer.Option(help="The email message id.")] = None,
    recipient: Annotated[
        list[str] | None,
        typer.Option(
            "--recipient", metavar="ADDRESS", help="A recipient (repeat the option for several)."
        ),
    ] = None,
    conversation_id: Annotated[
        str | None, typer.Option(help="The conversation the message belongs to.")
    ] = None,
    occurred_at: Annotated[
        str | None, typer.Option(help="When it happened (ISO 8601 with a time zone).")
    ] = None,
    config: ConfigOption = None,
    state_file: StateOption = None,
    no_guard: NoGuardOption = False,
    as_json: JsonOption = False,
    verbose: VerboseOption = False,
) -> None:
    """Report one message's delivery STATE through CONNECTION and print the receipt.

    Exit 0 when the update was applied or skipped (stale, duplicate, or a state the
    vendor cannot express), 1 when it failed. The state applied to each message is kept
    in a per-user file (--state), so a later run never regresses it: `send acme m1
    delivered` then `send acme m1 sent` skips the second as stale.
    """
    configure_logging(verbose)
    if error_message is None and (error_code is not None or error_kind is not None):
        raise CliError("--error-code and --error-kind need --error-message")
    error = (
        StatusError(error_message, code=error_code, kind=error_kind)
        if error_message is not None
        else None
    )
    status = MessageStatus(
        message_id,
        state,
        error=error,
        occurred_at=_timestamp(occurred_at),
        conversation_id=conversation_id,
        channel_id=channel_id,
        email_message_id=email_message_id,
        recipients=tuple(recipient or ()),
    )
    with _open(config, connection, state_file, no_guard) as bridge:
        adapter = bridge.connections[connection].adapter.id
        try:
            receipt = bridge.update_status(connection, status)
        except ConfigurationError:
            raise
        except MessagingError as exc:
            receipt = receipt_from_error(
                exc, connection=connection, adapter=adapter, subject_id=message_id, state=state
            )
    _show(receipt, as_json)


@handle_errors
def conversation(
    connection: Annotated[
        str, typer.Argument(metavar="CONNECTION", help="Connection name from the config file.")
    ],
    conversation_id: Annotated[
        str, typer.Argument(metavar="CONVERSATION_ID", help="The vendor's conversation id.")
    ],
    account_id: Annotated[
        str | None,
        typer.Option(help="The account (e.g. a location id); else the connection's."),
    ] = None,
    unread_count: Annotated[int | None, typer.Option(min=0, help="Set the unread count.")] = None,
    starred: Annotated[
        bool | None, typer.Option("--starred/--not-starred", help="Star or unstar.")
    ] = None,
    config: ConfigOption = None,
    state_file: StateOption = None,
    no_guard: NoGuardOption = False,
    as_json: JsonOption = False,
    verbose: VerboseOption = False,
) -> None:
    """Update a conversation's inbox state (unread count, starred) and print the receipt.

    Give --unread-count, --starred/--not-starred, or both.
    """
    configure_logging(verbose)
    update = ConversationUpdate(
        conversation_id, account_id=account_id, unread_count=unread_count, starred=starred
    )
    with _open(config, connection, state_file, no_guard) as bridge:
        adapter = bridge.connections[connection].adapter.id
        try:
            receipt = bridge.update_conversation(connection, update)
        except ConfigurationError:
            raise
        except MessagingError as exc:
            receipt = receipt_from_error(
                exc, connection=connection, adapter=adapter, subject_id=conversation_id
            )
    _show(receipt, as_json)
