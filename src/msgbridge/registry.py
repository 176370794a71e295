"""The adapter registry: an instance that discovers plugins through entry points.

Entry points load one at a time. A plugin that fails to import, to validate or to
register is recorded in :attr:`AdapterRegistry.failures` and the others carry on. The
registry is strict: a hook name msgbridge does not define (a misspelled
``register_adapter``), a plugin that registers nothing, the same plugin loaded under a
second name and the same observer added twice are failures too, each naming where it
came from, never an exception in the caller's face.
Built-in adapters are entry points of msgbridge itself, so they take exactly the path a
third-party adapter takes.

Environment (comma-separated entry-point or distribution names):
``MSGBRIDGE_PLUGINS_BLOCK`` skips the named plugins; ``MSGBRIDGE_PLUGINS_ALLOW``, when
set, loads only the named ones.
"""

from __future__ import annotations

import difflib
import functools
import logging
import os
from collections.abc import Callable, Iterator, Mapping
from importlib.metadata import (
    EntryPoint,
    PackageNotFoundError,
    distribution,
    entry_points,
    packages_distributions,
)
from typing import Any

import attrs
import pluggy

from msgbridge import hookspecs
from msgbridge.adapter import Adapter
from msgbridge.errors import ConfigurationError
from msgbridge.events import DeliveryAttempt

__all__ = [
    "ALLOW_ENV",
    "BLOCK_ENV",
    "AdapterRegistry",
    "PluginFailure",
    "PluginSource",
    "RegisteredAdapter",
]

log = logging.getLogger("msgbridge.plugins")

BLOCK_ENV = "MSGBRIDGE_PLUGINS_BLOCK"
ALLOW_ENV = "MSGBRIDGE_PLUGINS_ALLOW"


@attrs.frozen
class PluginSource:
    """Where a plugin came from: its entry point and distribution."""

    name: str
    value: str = ""
    distribution: str | None = None
    version: str | None = None

    def __str__(self) -> str:
        dist = f"{self.distribution} {self.version}" if self.distribution else "no distribution"
        return f"plugin {self.name!r} ({self.value or 'in-process'}; {dist})"


@attrs.frozen
class PluginFailure:
    """A plugin (or observer) that was refused, where it came from, and why."""

    source: PluginSource
    reason: str

    @property
    def message(self) -> str:
        """One line naming the entry point, its distribution and the reason."""
        return f"{self.source}: {self.reason}"

    def __str__(self) -> str:
        return self.message


@attrs.frozen
class RegisteredAdapter:
    adapter: Adapter[Any]
    source: PluginSource


def _names(environ: Mapping[str, str], key: str) -> frozenset[str] | None:
    raw = environ.get(key)
    if raw is None:
        return None
    return frozenset(part.strip() for part in raw.split(",") if part.strip())


class AdapterRegistry:
    """Adapters by id, the plugins they came from, and the plugins that failed."""

    def __init__(self) -> None:
        self._pm = pluggy.PluginManager(hookspecs.PROJECT)
        self._pm.add_hookspecs(hookspecs)
        self._adapters: dict[str, RegisteredAdapter] = {}
        self._conflicts: dict[str, list[PluginSource]] = {}
        self._failures: list[PluginFailure] = []
        self._skipped: list[PluginSource] = []
        self._sources: dict[int, PluginSource] = {}
        self._observers: list[Callable[[DeliveryAttempt], None]] = []
        self._adapter_counts: dict[int, int] = {}

    # -- discovery ------------------------------------------------------------------

    @classmethod
    def from_entry_points(
        cls, *, group: str = hookspecs.PROJECT, environ: Mapping[str, str] | None = None
    ) -> AdapterRegistry:
        """A registry holding every installed plugin (built-ins included)."""
        registry = cls()
        registry.load_entry_points(group=group, environ=environ)
        return registry

    def load_entry_points(
        self, *, group: str = hookspecs.PROJECT, environ: Mapping[str, str] | None = None
    ) -> None:
        env = os.environ if environ is None else environ
        blocked = _names(env, BLOCK_ENV) or frozenset()
        allowed = _names(env, ALLOW_ENV)
        for ep in sorted(entry_points(group=group), key=lambda e: e.name):
            source = _source_of(ep)
            ids = {source.name, source.distribution or ""}
            if ids & blocked or (allowed is not None and not ids & allowed):
                self._skipped.append(source)
                log.info("msgbridge: %s skipped by %s/%s", source, BLOCK_ENV, ALLOW_ENV)
                continue
            try:
                plugin = ep.load()
            except Exception as exc:  # a broken plugin must not take the others down
                self._fail(source, f"import failed: {type(exc).__name__}: {exc}")
                continue
            self.add_plugin(plugin, source=source)

    def add_plugin(self, plugin: object, *, source: PluginSource | None = None) -> bool:
        """Register a module or object with hookimpls; False (and a failure) if it breaks.

        Refused (recorded in :attr:`failures`, never raised): a plugin pluggy rejects, a
        hookimpl whose name is not a msgbridge hook, a plugin whose hooks register
        nothing at all, and a plugin object already loaded under another name.
        """
        source = source or PluginSource(getattr(plugin, "__name__", repr(plugin)))
        if self._pm.is_registered(plugin):
            first = self._sources.get(id(plugin))
            if first is not None and first != source:
                self._fail(source, f"already loaded as {first}; this second load is ignored")
                return False
            return True
        taken = self._pm.get_plugin(source.name)
        if taken is not None:
            first = self._sources.get(id(taken), PluginSource(source.name))
            self._fail(source, f"the plugin name {source.name!r} is already used by {first}")
            return False
        try:
            self._pm.register(plugin, name=source.name)
        except Exception as exc:
            self._fail(source, f"invalid plugin: {type(exc).__name__}: {exc}")
            return False
        unknown = self._unknown_hooks(plugin)
        if unknown:
            self._pm.unregister(plugin)
            self._fail(source, unknown)
            return False
        staged: list[Adapter[Any]] = []
        try:
            self._call_own(plugin, "register_adapters", register=staged.append)
            for adapter in staged:
                _check_adapter(adapter)
        except Exception as exc:
            self._pm.unregister(plugin)
            self._fail(source, f"registration failed: {type(exc).__name__}: {exc}")
            return False
        empty = None if staged else self._registers_nothing(plugin)
        if empty is not None:
            self._pm.unregister(plugin)
            self._fail(source, empty)
            return False
        for adapter in staged:
            self._add(adapter, source)
        self._sources[id(plugin)] = source
        self._adapter_counts[id(plugin)] = len(staged)
        return True

    def _own_hooks(self, plugin: object) -> dict[str, bool]:
        """``{hook name: has a spec}`` for every hookimpl *plugin* brought."""
        hooks: dict[str, bool] = {}
        for caller in self._pm.get_hookcallers(plugin) or []:
            if any(
                impl.plugin is plugin and not impl.optionalhook for impl in caller.get_hookimpls()
            ):
                hooks[caller.name] = caller.spec is not None
        return hooks

    def _unknown_hooks(self, plugin: object) -> str | None:
        """What :meth:`pluggy.PluginManager.check_pending` would refuse, per plugin."""
        unknown = sorted(name for name, known in self._own_hooks(plugin).items() if not known)
        if not unknown:
            return None
        names = ", ".join(_HOOK_NAMES)
        parts = []
        for name in unknown:
            close = difflib.get_close_matches(name, _HOOK_NAMES, n=1)
            parts.append(f"{name!r}" + (f" (did you mean {close[0]!r}?)" if close else ""))
        return (
            f"unknown hook {', '.join(parts)}: msgbridge hooks are {names}; the plugin was "
            "not loaded"
        )

    def _registers_nothing(self, plugin: object) -> str | None:
        """Why a plugin that offers no adapter, emulated vendor or observer is refused."""
        hooks = self._own_hooks(plugin)
        if not hooks:
            return (
                "registers nothing: it has no @msgbridge.hookimpl function (expected "
                f"one of {', '.join(_HOOK_NAMES)}); is the entry point the right module?"
            )
        if set(hooks) == {"register_adapters"}:
            return (
                "registers nothing: register_adapters called register() zero times and "
                "the plugin offers no emulated vendor or observer"
            )
        return None

    def _call_own(self, plugin: object, hook_name: str, **kwargs: Any) -> None:
        """Call only *plugin*'s implementation, so one plugin's failure is its own."""
        caller: pluggy.HookCaller = getattr(self._pm.hook, hook_name)
        for impl in caller.get_hookimpls():
            if impl.plugin is plugin:
                impl.function(**{name: kwargs[name] for name in impl.argnames})

    def _fail(self, source: PluginSource, reason: str) -> None:
        failure = PluginFailure(source, reason)
        log.warning("msgbridge: %s", failure.message)
        self._failures.append(failure)

    def _add(self, adapter: Adapter[Any], source: PluginSource) -> None:
        existing = self._adapters.get(adapter.id)
        if existing is not None or adapter.id in self._conflicts:
            sources = self._conflicts.setdefault(adapter.id, [existing.source] if existing else [])
            sources.append(source)
            self._adapters.pop(adapter.id, None)
            log.warning("msgbridge: adapter id %r claimed twice", adapter.id)
            return
        self._adapters[adapter.id] = RegisteredAdapter(adapter, source)

    # -- direct registration ----------------------------------------------------------

    def register(self, adapter: Adapter[Any], *, source: PluginSource | None = None) -> None:
        """Add one adapter; a second adapter with the same id is a ``ConfigurationError``."""
        _check_adapter(adapter)
        source = source or PluginSource(f"{type(adapter).__module__}.{type(adapter).__name__}")
        if adapter.id in self._conflicts:
            names = " and ".join(str(s) for s in self._conflicts[adapter.id])
            raise ConfigurationError(
                f"adapter id {adapter.id!r} is already claimed by {names} and by {source}",
                adapter=adapter.id,
            )
        existing = self._adapters.get(adapter.id)
        if existing is not None:
            raise ConfigurationError(
                f"adapter id {adapter.id!r} is claimed by {existing.source} and by {source}",
                adapter=adapter.id,
            )
        self._adapters[adapter.id] = RegisteredAdapter(adapter, source)

    # -- lookup ----------------------------------------------------------------------

    def get(self, adapter_id: str) -> Adapter[Any]:
        return self.entry(adapter_id).adapter

    def entry(self, adapter_id: str) -> RegisteredAdapter:
        if adapter_id in self._conflicts:
            names = " and ".join(str(s) for s in self._conflicts[adapter_id])
            raise ConfigurationError(
                f"adapter id {adapter_id!r} is claimed by {names}; block one with {BLOCK_ENV}",
                adapter=adapter_id,
            )
        try:
            return self._adapters[adapter_id]
        except KeyError:
            known = ", ".join(sorted(self._adapters)) or "none"
            hint = f"; {len(self._failures)} plugin(s) failed to load" if self._failures else ""
            raise ConfigurationError(
                f"unknown adapter {adapter_id!r}; installed: {known}{hint}", key="adapter"
            ) from None

    def __contains__(self, adapter_id: object) -> bool:
        return adapter_id in self._adapters

    def __iter__(self) -> Iterator[RegisteredAdapter]:
        return iter(sorted(self._adapters.values(), key=lambda r: r.adapter.id))

    def __len__(self) -> int:
        return len(self._adapters)

    @property
    def failures(self) -> tuple[PluginFailure, ...]:
        return tuple(self._failures)

    @property
    def skipped(self) -> tuple[PluginSource, ...]:
        return tuple(self._skipped)

    @property
    def conflicts(self) -> Mapping[str, tuple[PluginSource, ...]]:
        return {k: tuple(v) for k, v in self._conflicts.items()}

    @property
    def emulated_vendors(self) -> tuple[Any, ...]:
        """Fresh emulator vendor objects from every plugin that offers them.

        Asked for lazily (production bridges never import the emulator), and anew on
        each access so two emulators never share vendor state. A plugin whose hook
        fails is recorded in :attr:`failures`; its adapters stay registered.
        """
        vendors: list[Any] = []
        for impl in self._pm.hook.register_emulated_vendors.get_hookimpls():
            offered: list[Any] = []
            try:
                impl.function(register=offered.append)
            except Exception as exc:
                source = self._sources.get(id(impl.plugin), PluginSource(impl.plugin_name))
                reason = f"emulated vendors failed: {type(exc).__name__}: {exc}"
                if PluginFailure(source, reason) not in self._failures:
                    self._fail(source, reason)
                continue
            if not offered and self._offers_nothing_else(impl.plugin):
                source = self._sources.get(id(impl.plugin), PluginSource(impl.plugin_name))
                reason = (
                    "registers nothing: no adapter, no observer, and register_emulated_vendors "
                    "called register() zero times"
                )
                if PluginFailure(source, reason) not in self._failures:
                    self._fail(source, reason)
            vendors.extend(offered)
        return tuple(vendors)

    def _offers_nothing_else(self, plugin: object) -> bool:
        """No adapters and no observer: an empty emulator hook means an empty plugin."""
        if self._adapter_counts.get(id(plugin), 0):
            return False
        return "delivery_attempted" not in self._own_hooks(plugin)

    @property
    def plugin_manager(self) -> pluggy.PluginManager:
        return self._pm

    # -- observation -----------------------------------------------------------------

    @property
    def has_observers(self) -> bool:
        """Whether anyone listens to ``delivery_attempted`` (else events are not built)."""
        return bool(self._pm.hook.delivery_attempted.get_hookimpls())

    def notify(self, event: DeliveryAttempt) -> None:
        """Tell every observer; a failing observer is logged and never fails a send."""
        for impl in self._pm.hook.delivery_attempted.get_hookimpls():
            try:
                impl.function(event=event)
            except Exception:
                log.exception(
                    "msgbridge: delivery_attempted observer %s raised; ignored",
                    impl.plugin_name,
                    extra={
                        "connection": event.connection,
                        "adapter": event.adapter,
                        "subject_id": event.subject_id,
                    },
                )

    @property
    def has_header_hooks(self) -> bool:
        """Whether a plugin adds headers to attempts (else none are asked for)."""
        return bool(self._pm.hook.delivery_headers.get_hookimpls())

    def headers_for(
        self, connection: str, adapter: str, operation: str, subject_id: str, attempt: int
    ) -> dict[str, str]:
        """The headers every ``delivery_headers`` plugin adds to this attempt, checked."""
        from msgbridge.validation import check_header_value

        merged: dict[str, str] = {}
        for impl in self._pm.hook.delivery_headers.get_hookimpls():
            try:
                extra: Any = impl.function(
                    connection=connection,
                    adapter=adapter,
                    operation=operation,
                    subject_id=subject_id,
                    attempt=attempt,
                )
                if extra is not None and not isinstance(extra, Mapping):
                    raise TypeError(f"returned {type(extra).__name__}, not a mapping")
                for name, value in (extra or {}).items():
                    if not (isinstance(name, str) and name.isascii() and name.isprintable()):
                        raise ValueError(f"invalid header name {name!r}")
                    merged[name] = check_header_value(value, key=name, secret=True)
            except Exception:
                log.exception(
                    "msgbridge: delivery_headers plugin %s failed; its headers are dropped",
                    impl.plugin_name,
                    extra={"connection": connection, "adapter": adapter, "subject_id": subject_id},
                )
        return merged

    def add_observer(self, observer: Callable[[DeliveryAttempt], None]) -> bool:
        """Register a plain function as a ``delivery_attempted`` observer.

        Adding the same observer twice is recorded in :attr:`failures` (the observer
        stays registered once) and returns False; it never raises.
        """
        source = _observer_source(observer)
        if any(o == observer for o in self._observers):
            self._fail(source, "observer added twice; it stays registered once")
            return False

        class _Observer:
            @hookspecs.hookimpl
            def delivery_attempted(self, event: DeliveryAttempt) -> None:
                observer(event)

        self._observers.append(observer)
        self._pm.register(_Observer(), name=f"observer-{len(self._observers)}-{id(observer)}")
        return True

    def __repr__(self) -> str:
        return f"<AdapterRegistry adapters={sorted(self._adapters)} failures={len(self._failures)}>"


#: The hook names plugins may implement (anything else is a misspelling).
_HOOK_NAMES: tuple[str, ...] = tuple(
    name
    for name, value in vars(hookspecs).items()
    if callable(value) and hasattr(value, f"{hookspecs.PROJECT}_spec")
)


@functools.cache
def _distributions() -> Mapping[str, list[str]]:
    return packages_distributions()


def _distribution_of(module: str) -> tuple[str | None, str | None]:
    """The installed distribution (name, version) that provides *module*, if known.

    ``packages_distributions`` misses editable installs, so a distribution named like
    the top-level package is the fallback.
    """
    top = module.partition(".")[0]
    candidates = [*_distributions().get(top, []), top, top.replace("_", "-")]
    for name in candidates:
        try:
            dist = distribution(name)
        except PackageNotFoundError:
            continue
        return dist.metadata["Name"], dist.version
    return None, None


def _observer_source(observer: object) -> PluginSource:
    """Name an observer function and the distribution its module belongs to."""
    module = getattr(observer, "__module__", None) or type(observer).__module__
    name = getattr(observer, "__qualname__", None) or type(observer).__qualname__
    dist, dist_version = _distribution_of(module)
    return PluginSource(
        f"observer {name}", f"{module}:{name}", distribution=dist, version=dist_version
    )


def _source_of(ep: EntryPoint) -> PluginSource:
    dist = ep.dist
    return PluginSource(
        name=ep.name,
        value=ep.value,
        distribution=dist.metadata["Name"] if dist is not None else None,
        version=dist.version if dist is not None else None,
    )


def _check_adapter(adapter: object) -> None:
    if not isinstance(adapter, Adapter):
        raise ConfigurationError(
            f"register() takes an msgbridge.adapter.Adapter instance, got {type(adapter).__name__}"
        )
    adapter_id = getattr(adapter, "id", None)
    if (
        not isinstance(adapter_id, str)
        or not adapter_id
        or adapter_id != adapter_id.lower()
        or (any(ch.isspace() for ch in adapter_id))
    ):
        raise ConfigurationError(
            f"adapter id must be a non-empty lower-case string without spaces, got {adapter_id!r}"
        )
