"""Issue 10, the validation half: hostile values are refused at construction.

Each case here was measured on main before the fix: it was accepted and then failed at
send time (a retryable ``VendorUnavailable``, a raw ``TypeError``/``ValueError``/
``UnicodeEncodeError``), hung a connection, or went to the vendor as sent.
"""

from __future__ import annotations

import math
import random
import unicodedata
from typing import Any

import pytest

from msgbridge import (
    AdapterRegistry,
    AsyncBridge,
    BearerToken,
    Bridge,
    Connection,
    ConversationUpdate,
    MessageStatus,
    RetryPolicy,
    StatusError,
)
from msgbridge.adapters.highlevel import HighLevelAdapter, HighLevelVariant
from msgbridge.adapters.hubspot import HubSpotAdapter, HubSpotSettings
from msgbridge.errors import ConfigurationError, InvalidStatus
from msgbridge.model import MAX_UNREAD_COUNT
from msgbridge.ratelimit import SlidingWindowLimiter

from .support import FakeVendor, Harness, fresh_registry, hl_connection

PASSWORD = "base-url-Pa55word-xyz"

# -- settings that reach a URL or a header ------------------------------------------------

HOSTILE_SETTINGS = [
    # HighLevel's Version header: CR/LF from a file or variable, non-ASCII, spaces.
    ("highlevel", {"version": "2021-07-28\n"}, "version", "U+000A"),
    ("highlevel", {"version": "2021-07-28\r\nX-Evil: 1"}, "version", "U+000D"),
    ("highlevel", {"version": "\uff12\uff10\uff12\uff11-07-28"}, "version", "U+FF12"),
    ("highlevel", {"version": "2021 07 28"}, "version", "character 4"),
    ("highlevel", {"version": "2021-07-28\x00"}, "version", "U+0000"),
    ("leadway", {"version": "v3\x7f"}, "version", "U+007F"),
    ("hoop", {"version": "v" * 33}, "version", "at most 32"),
    ("highlevel", {"location_id": "loc\u202e1"}, "location_id", "U+202E"),
    ("highlevel", {"location_id": "loc\n1"}, "location_id", "control"),
    ("highlevel", {"provider_retry_after": math.inf}, "provider_retry_after", "finite"),
    ("highlevel", {"provider_retry_after": math.nan}, "provider_retry_after", "finite"),
    ("highlevel", {"base_url": "https://services.example.com\n"}, "base_url", "U+000A"),
    # HubSpot's api_version goes into the path: '$' let a newline through, '\d' let
    # fullwidth digits through (sent, then a 404).
    ("hubspot", {"api_version": "2026-03\n"}, "api_version", "2026-03"),
    ("hubspot", {"api_version": "\uff12\uff10\uff12\uff16-03"}, "api_version", "2026-03"),
    ("hubspot", {"api_version": "2026-03 "}, "api_version", "2026-03"),
    ("hubspot", {"api_version": 202603}, "api_version", "expected a string"),
    ("hubspot", {"channel_id": 2**31}, "channel_id", "32-bit"),
    ("hubspot", {"channel_id": "12"}, "channel_id", "expected an integer"),
]


@pytest.mark.parametrize("bridge_cls", [Bridge, AsyncBridge])
@pytest.mark.parametrize(("adapter", "settings", "key", "message"), HOSTILE_SETTINGS)
def test_hostile_settings_are_refused_when_the_connection_is_added(
    bridge_cls: type[Any], adapter: str, settings: dict[str, Any], key: str, message: str
) -> None:
    connection = Connection("c", adapter=adapter, credentials=BearerToken("t"), settings=settings)
    with pytest.raises(ConfigurationError) as info:
        bridge_cls([connection], registry=fresh_registry())
    assert info.value.key == key
    assert info.value.adapter == adapter
    assert message in info.value.message


@pytest.mark.parametrize("adapter", ["highlevel", "leadway", "hoop", "hubspot"])
def test_base_url_with_userinfo_is_refused_without_echoing_the_password(adapter: str) -> None:
    """httpx logs the request URL at INFO, password included: refuse it up front."""
    connection = Connection(
        "c",
        adapter=adapter,
        credentials=BearerToken("t"),
        settings={"base_url": f"https://bot:{PASSWORD}@api.example.com"},
    )
    with pytest.raises(ConfigurationError) as info:
        Bridge([connection], registry=fresh_registry())
    assert info.value.key == "base_url"
    assert "user name or password" in info.value.message
    assert PASSWORD not in str(info.value) + repr(info.value)


@pytest.mark.parametrize("value", [" 12", "12\n", "\uff11\uff12", "1_2", "+12", "99999999999"])
def test_channel_id_text_is_ascii_digits_only(value: str) -> None:
    """Settings built in code (not parsed) used to strip whitespace and carry on."""
    with pytest.raises(ConfigurationError) as info:
        HubSpotSettings(channel_id=value)  # type: ignore[arg-type]  # the converter's job
    assert info.value.key == "channel_id"
    assert "ASCII digits" in info.value.message
    assert HubSpotSettings(channel_id="12").channel_id == 12  # type: ignore[arg-type]


def test_documented_versions_pass_and_are_sent() -> None:
    adapter = HighLevelAdapter()
    for version in ("2021-04-15", "2021-07-28", "v3"):
        settings = adapter.parse_settings({"version": version})
        spec = adapter.prepare_status(MessageStatus("m1", "read"), settings)
        assert spec.headers["Version"] == version
    hubspot = HubSpotAdapter()
    for api_version in ("2026-03", "2026-09-beta", "v3"):
        assert hubspot.parse_settings({"api_version": api_version}).api_version == api_version


def test_a_variant_is_checked_like_settings() -> None:
    """White labels are registered as data; their Version is checked at once, their host
    by the core when a connection uses it (before any I/O)."""
    with pytest.raises(ConfigurationError) as info:
        HighLevelVariant("acme", "Acme", "2021-07-28\n")
    assert info.value.key == "version"
    registry = AdapterRegistry()
    registry.register(
        HighLevelAdapter(
            HighLevelVariant("acme", "Acme", "2021-07-28", base_url="http://acme.example")
        )
    )
    with pytest.raises(ConfigurationError) as bad_url:
        Bridge([Connection("a", adapter="acme", credentials=BearerToken("t"))], registry=registry)
    assert (bad_url.value.key, bad_url.value.connection) == ("base_url", "a")
    assert "adapter 'acme''s default base_url" in str(bad_url.value)


@pytest.mark.anyio
async def test_a_newline_version_never_reaches_the_vendor(mode: str) -> None:
    """On main this went out, failed as VendorUnavailable and was retried five times."""
    vendor = FakeVendor()
    with pytest.raises(ConfigurationError):
        async with Harness(mode, vendor, [hl_connection(settings={"version": "2021-04-15\n"})]):
            pass
    assert vendor.seen == []


# -- numbers ------------------------------------------------------------------------------

RETRY_FIELDS = [
    "max_attempts",
    "initial_backoff",
    "max_backoff",
    "multiplier",
    "jitter",
    "deadline",
    "max_retry_after",
]


@pytest.mark.parametrize("field", RETRY_FIELDS)
@pytest.mark.parametrize("value", [math.inf, -math.inf, math.nan, True, "1", None])
def test_retry_policy_refuses_non_finite_and_non_numbers(field: str, value: Any) -> None:
    """``max_backoff = nan`` raised a raw ValueError from time.sleep on main."""
    with pytest.raises(ConfigurationError) as info:
        RetryPolicy(**{field: value})
    assert info.value.key == field
    assert field in info.value.message


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("max_attempts", 2.0),
        ("max_attempts", 10_001),
        ("initial_backoff", 604_801.0),
        ("max_backoff", 1e300),
        ("max_retry_after", 1e9),
        ("multiplier", 1001.0),
        ("deadline", 1e13),
    ],
)
def test_retry_policy_ranges_are_bounded(field: str, value: Any) -> None:
    with pytest.raises(ConfigurationError) as info:
        RetryPolicy(**{field: value})
    assert info.value.key == field


def test_a_long_policy_never_overflows() -> None:
    policy = RetryPolicy(max_attempts=10_000, max_backoff=30.0, jitter=0.0)
    assert policy.backoff(5_000, random.Random(1)) == 30.0
    no_wait = RetryPolicy(max_attempts=10_000, initial_backoff=0.0)
    assert no_wait.backoff(5_000, random.Random(1)) == 0.0  # not 0 * inf = nan


@pytest.mark.parametrize(
    ("requests", "per_seconds", "key"),
    [
        (10, math.inf, "per_seconds"),
        (10, math.nan, "per_seconds"),
        (10, 0.0, "per_seconds"),
        (10, -1.0, "per_seconds"),
        (10, 86_401.0, "per_seconds"),
        (10, "1", "per_seconds"),
        (0, 1.0, "requests"),
        (True, 1.0, "requests"),
        (2.5, 1.0, "requests"),
        ("a", 1.0, "requests"),
        (10**7, 1.0, "requests"),
    ],
)
def test_limiter_refuses_bad_budgets_with_a_typed_error(
    requests: Any, per_seconds: Any, key: str
) -> None:
    """``per_seconds = inf`` hung a connection forever on main."""
    with pytest.raises(ConfigurationError) as info:
        SlidingWindowLimiter(requests, per_seconds)
    assert info.value.key == key


@pytest.mark.parametrize("margin", [math.nan, math.inf, -0.1, 2.0])
def test_limiter_margin_is_a_fraction(margin: float) -> None:
    with pytest.raises(ConfigurationError) as info:
        SlidingWindowLimiter(10, 1.0, margin=margin)
    assert info.value.key == "margin"


@pytest.mark.parametrize(
    "rate_limit",
    [("a", 1), (1, "a"), (1, math.inf), (1, math.nan), (True, 1.0), (0, 1.0), (1, 0), "ab", (1,)],
)
def test_connection_rate_limit_is_a_configuration_error(rate_limit: Any) -> None:
    """``rate_limit=("a", 1)`` was an untyped TypeError on main."""
    with pytest.raises(ConfigurationError) as info:
        Connection("c", adapter="highlevel", credentials=BearerToken("t"), rate_limit=rate_limit)
    assert info.value.key == "rate_limit"
    assert "rate_limit" in info.value.message


def test_connection_rate_limit_in_range_is_kept() -> None:
    connection = Connection(
        "c", adapter="highlevel", credentials=BearerToken("t"), rate_limit=(100, 10.0)
    )
    with Bridge([connection], registry=fresh_registry()) as bridge:
        limiter = bridge.connections["c"].limiter
        assert limiter is not None
        assert (limiter.requests, limiter.per_seconds) == (100, 10.0)


@pytest.mark.parametrize("count", [MAX_UNREAD_COUNT + 1, 10**30, -1])
def test_unread_count_is_bounded(count: int) -> None:
    """2**31 and 10**30 were sent to HighLevel on main."""
    with pytest.raises(InvalidStatus) as info:
        ConversationUpdate("c1", unread_count=count)
    assert info.value.field == "unread_count"
    assert str(MAX_UNREAD_COUNT) in info.value.message


def test_largest_unread_count_is_sent() -> None:
    assert MAX_UNREAD_COUNT == 2**31 - 1
    update = ConversationUpdate("c1", account_id="loc", unread_count=MAX_UNREAD_COUNT)
    adapter = HighLevelAdapter()
    spec = adapter.prepare_conversation(update, adapter.parse_settings({}))
    assert spec.json["unreadCount"] == MAX_UNREAD_COUNT


# -- identifiers --------------------------------------------------------------------------

FORMAT_CHARACTERS = [
    "\u202a",  # LEFT-TO-RIGHT EMBEDDING
    "\u202b",
    "\u202c",
    "\u202d",
    "\u202e",  # RIGHT-TO-LEFT OVERRIDE
    "\u2066",  # LEFT-TO-RIGHT ISOLATE
    "\u2067",
    "\u2068",
    "\u2069",
    "\u200b",  # ZERO WIDTH SPACE
    "\u200c",
    "\u200d",
    "\u200e",  # LEFT-TO-RIGHT MARK
    "\u200f",
    "\u2060",  # WORD JOINER
    "\ufeff",  # BOM
    "\u00ad",  # SOFT HYPHEN
]
SURROGATES = ["\ud800", "\udbff", "\udc00", "\udfff"]
ID_FIELDS = ["message_id", "conversation_id", "channel_id", "email_message_id"]


def _status(field: str, value: str) -> MessageStatus:
    if field == "message_id":
        return MessageStatus(value, "read")
    return MessageStatus("m1", "read", **{field: value})


@pytest.mark.parametrize("char", FORMAT_CHARACTERS + SURROGATES)
@pytest.mark.parametrize("field", ID_FIELDS)
def test_identifiers_refuse_format_characters_and_lone_surrogates(field: str, char: str) -> None:
    with pytest.raises(InvalidStatus) as info:
        _status(field, f"msg{char}1")
    assert info.value.field == field
    assert f"U+{ord(char):04X}" in info.value.message
    assert field in info.value.message


def test_every_format_character_tested_is_category_cf() -> None:
    assert {unicodedata.category(c) for c in FORMAT_CHARACTERS} == {"Cf"}
    assert {unicodedata.category(c) for c in SURROGATES} == {"Cs"}


@pytest.mark.parametrize("char", ["\u202e", "\ud800", "\ufeff"])
def test_conversation_ids_and_connection_names_too(char: str) -> None:
    for make, field in (
        (lambda: ConversationUpdate(f"c{char}", unread_count=0), "conversation_id"),
        (lambda: ConversationUpdate("c1", account_id=f"l{char}", unread_count=0), "account_id"),
    ):
        with pytest.raises(InvalidStatus) as info:
            make()
        assert info.value.field == field
    with pytest.raises(ConfigurationError) as bad_name:
        Connection(f"acme{char}", adapter="highlevel", credentials=BearerToken("t"))
    assert bad_name.value.key == "name"
    assert f"U+{ord(char):04X}" in bad_name.value.message


def test_ordinary_unicode_ids_still_pass() -> None:
    for value in ("msg-é-1", "会話-42", "مرحبا", "emoji-\U0001f600", "a b"):
        assert MessageStatus(value, "read").message_id == value


@pytest.mark.parametrize(
    ("make", "field"),
    [
        (lambda: StatusError("bad \ud800 text"), "error.message"),
        (lambda: StatusError("x", code="\udc00"), "error.code"),
        (lambda: StatusError("x", kind="\udfff"), "error.kind"),
        (lambda: MessageStatus("m1", "sent", recipients=["a\ud800"]), "recipients"),
    ],
)
def test_free_text_refuses_lone_surrogates(make: Any, field: str) -> None:
    """They cannot be encoded as UTF-8, so they failed at storage or send time."""
    with pytest.raises(InvalidStatus) as info:
        make()
    assert info.value.field == field
    assert "lone surrogate" in info.value.message


def test_free_text_keeps_bidi_marks() -> None:
    """Error text is prose, not an id: a right-to-left vendor message may carry marks."""
    assert StatusError("\u200fخطأ في التسليم").message.startswith("\u200f")
