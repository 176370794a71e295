"""Every code example in ``docs/`` runs here, so the documentation cannot rot.

What runs
    Every fenced ```` ```python ```` block in ``docs/**/*.md`` is executed, each in a fresh
    namespace, with the real library. Examples are self-contained: one that needs a vendor
    starts the in-process emulator itself (``with Emulator(...) as emu:``) and points its
    connections at ``emu.base_url(vendor)``; nothing is pre-seeded into the namespace.
    ``os.environ`` and the working directory are restored after each example. The
    traceback of a failing example names the Markdown file and line.

Markers (an HTML comment on its own line right before the fence; blank lines between are
fine; the rendered page does not show it)
    ``<!-- test: skip REASON -->``      not executed; a reason is required.
    ``<!-- test: xfail REASON -->``     executed and must fail (strict: a pass is an error,
                                        so the marker goes when the bug is fixed).
    ``<!-- test: continue -->``         executed after the previous example of the page, in
                                        its namespace, as one test.

Titles (Material's ```` ```python title="…" ```` puts a file name above a block)
    ``title="src/PKG/….py"``          a module of the page's example project; importable
                                        by that page's examples (``import PKG``) and written
                                        to ``src/`` for its tests.
    ``title="tests/….py"``            a test file (``tests/conftest.py`` included) of the
                                        page's example project: the page's modules and
                                        tests are written to a temporary directory and run
                                        with ``pytest tests`` in a subprocess, which must
                                        pass.
    ``title="msgbridge.toml"``        (``toml`` blocks) checked with the CLI's config
                                        parser; every other ``toml`` block must parse.

Also checked: the state-mapping tables of ``docs/adapters/*.md`` against the adapters'
capabilities, the error table of ``docs/errors.md`` against ``msgbridge.errors``, and,
when the ``docs`` extra is installed, ``mkdocs build --strict``.
"""

from __future__ import annotations

import importlib
import importlib.abc
import importlib.machinery
import importlib.util
import os
import re
import subprocess
import sys
import textwrap
import traceback
import types
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import pytest

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover - Python 3.10
    import tomli as tomllib

ROOT = Path(__file__).resolve().parents[2]
DOCS = ROOT / "docs"

_FENCE = re.compile(r"^(?P<indent>[ \t]*)(?P<fence>`{3,}|~{3,})[ \t]*(?P<info>[^`]*?)[ \t]*$")
_MARKER = re.compile(r"^\s*<!--\s*test:\s*(?P<kind>\S+)\s*(?P<reason>.*?)\s*-->\s*$")
_ATTR = re.compile(r'(\w+)="([^"]*)"')
_KINDS = ("skip", "xfail", "continue")


def _shown(path: Path) -> str:
    """*path* relative to the repository when it is inside it."""
    return str(path.relative_to(ROOT)) if path.is_relative_to(ROOT) else str(path)


@dataclass
class Block:
    """One fenced code block of a Markdown page."""

    path: Path
    #: 1-based line of the opening fence.
    line: int
    lang: str
    title: str | None
    source: str
    marker: str | None = None
    reason: str = ""

    @property
    def where(self) -> str:
        return f"{_shown(self.path)}:{self.line}"

    @property
    def role(self) -> str:
        """``module``, ``test`` or ``example`` (see the module docstring)."""
        if self.title and self.title.startswith("src/") and self.title.endswith(".py"):
            return "module"
        if self.title and self.title.startswith("tests/") and self.title.endswith(".py"):
            return "test"
        return "example"

    @property
    def module_name(self) -> str:
        assert self.title is not None
        dotted = self.title.removeprefix("src/").removesuffix(".py").replace("/", ".")
        return dotted.removesuffix(".__init__")

    def code(self) -> types.CodeType:
        """Compiled so that tracebacks point at the Markdown file and line."""
        padded = "\n" * self.line + self.source
        return compile(padded, _shown(self.path), "exec")


@dataclass
class Example:
    """Blocks run together in one namespace: a block and its ``continue`` blocks."""

    blocks: list[Block] = field(default_factory=list)

    @property
    def first(self) -> Block:
        return self.blocks[0]


def parse_blocks(path: Path) -> list[Block]:
    """Every fenced block of *path*, with the marker that precedes it."""
    lines = path.read_text(encoding="utf-8").split("\n")
    blocks: list[Block] = []
    marker: tuple[str, str, int] | None = None
    index = 0
    while index < len(lines):
        line = lines[index]
        found = _MARKER.match(line)
        if found:
            if marker is not None:
                raise ValueError(f"{path}:{marker[2]}: marker not followed by a code block")
            marker = (found["kind"], found["reason"], index + 1)
            index += 1
            continue
        opening = _FENCE.match(line)
        if opening is None:
            if line.strip() and marker is not None:
                raise ValueError(f"{path}:{marker[2]}: marker not followed by a code block")
            index += 1
            continue
        indent, fence, info = opening["indent"], opening["fence"], opening["info"]
        closing = re.compile(rf"^[ \t]*{re.escape(fence[0])}{{{len(fence)},}}[ \t]*$")
        end = index + 1
        while end < len(lines) and not closing.match(lines[end]):
            end += 1
        if end == len(lines):
            raise ValueError(f"{path}:{index + 1}: unclosed code fence")
        body = [x[len(indent) :] if x.startswith(indent) else x for x in lines[index + 1 : end]]
        words = info.strip("{} ").split()
        lang = words[0].lstrip(".").lower() if words else ""
        attrs = dict(_ATTR.findall(info))
        kind, reason = (marker[0], marker[1]) if marker else (None, "")
        blocks.append(
            Block(path, index + 1, lang, attrs.get("title"), "\n".join(body) + "\n", kind, reason)
        )
        marker = None
        index = end + 1
    if marker is not None:
        raise ValueError(f"{path}:{marker[2]}: marker not followed by a code block")
    return blocks


def check_markers(blocks: Sequence[Block]) -> None:
    """Refuse markers that would silently change what is tested."""
    previous_example: Block | None = None
    for block in blocks:
        if block.marker is not None:
            if block.marker not in _KINDS:
                raise ValueError(f"{block.where}: unknown marker {block.marker!r}; use {_KINDS}")
            if block.lang != "python":
                raise ValueError(f"{block.where}: markers apply to python blocks only")
            if block.marker in ("skip", "xfail") and not block.reason:
                raise ValueError(f"{block.where}: '{block.marker}' needs a reason")
            if block.marker == "continue":
                if block.role != "example" or previous_example is None:
                    raise ValueError(f"{block.where}: 'continue' must follow an example")
                if previous_example.marker == "skip":
                    raise ValueError(f"{block.where}: 'continue' cannot follow a skipped example")
        if block.lang == "python" and block.role == "example":
            previous_example = block


def group_examples(blocks: Sequence[Block]) -> list[Example]:
    examples: list[Example] = []
    for block in blocks:
        if block.lang != "python" or block.role != "example":
            continue
        if block.marker == "continue":
            examples[-1].blocks.append(block)
        else:
            examples.append(Example([block]))
    return examples


def pages() -> list[Path]:
    return sorted(DOCS.rglob("*.md"))


def _all_blocks() -> list[Block]:
    return [block for page in pages() for block in parse_blocks(page)]


def _examples() -> list[pytest.param]:
    params = []
    for page in pages():
        for example in group_examples(parse_blocks(page)):
            first = example.first
            marks = []
            if first.marker == "skip":
                marks.append(pytest.mark.skip(reason=f"{first.where}: {first.reason}"))
            elif first.marker == "xfail":
                marks.append(
                    pytest.mark.xfail(reason=f"{first.where}: {first.reason}", strict=True)
                )
            params.append(pytest.param(example, id=first.where, marks=marks))
    return params


def _pages_with(role: str) -> list[pytest.param]:
    return [
        pytest.param(page, id=str(page.relative_to(ROOT)))
        for page in pages()
        if any(b.lang == "python" and b.role == role for b in parse_blocks(page))
    ]


# -- the example project of a page: modules importable in-process ------------------------


class _PageModules(importlib.abc.MetaPathFinder, importlib.abc.Loader):
    """Serves a page's ``src/…`` blocks as importable modules (missing parents: empty)."""

    def __init__(self, blocks: Sequence[Block]) -> None:
        self.blocks = {b.module_name: b for b in blocks}
        self.packages = {b.module_name for b in blocks if str(b.title).endswith("__init__.py")}
        for name in list(self.blocks):
            parts = name.split(".")
            self.packages.update(".".join(parts[:i]) for i in range(1, len(parts)))

    @property
    def names(self) -> set[str]:
        return set(self.blocks) | self.packages

    def find_spec(
        self, fullname: str, path: object = None, target: object = None
    ) -> importlib.machinery.ModuleSpec | None:
        if fullname not in self.names:
            return None
        block = self.blocks.get(fullname)
        origin = block.where if block else "<docs package>"
        return importlib.util.spec_from_loader(
            fullname, self, origin=origin, is_package=fullname in self.packages
        )

    def create_module(self, spec: importlib.machinery.ModuleSpec) -> None:
        return None

    def exec_module(self, module: types.ModuleType) -> None:
        block = self.blocks.get(module.__name__)
        if block is not None:
            exec(block.code(), module.__dict__)  # noqa: S102 - the docs' own examples


@contextmanager
def page_modules(blocks: Sequence[Block]) -> Iterator[_PageModules]:
    finder = _PageModules([b for b in blocks if b.lang == "python" and b.role == "module"])
    sys.meta_path.insert(0, finder)
    try:
        yield finder
    finally:
        sys.meta_path.remove(finder)
        for name in finder.names:
            sys.modules.pop(name, None)


@contextmanager
def restored_process_state() -> Iterator[None]:
    environ, cwd = dict(os.environ), os.getcwd()
    try:
        yield
    finally:
        os.chdir(cwd)
        os.environ.clear()
        os.environ.update(environ)


def run_example(example: Example, page_blocks: Sequence[Block]) -> None:
    namespace: dict[str, object] = {"__name__": "__docs_example__"}
    with page_modules(page_blocks), restored_process_state():
        for block in example.blocks:
            exec(block.code(), namespace)  # noqa: S102 - the docs' own examples


def run_project_tests(
    page_blocks: Sequence[Block], where: Path
) -> subprocess.CompletedProcess[str]:
    """Write the page's modules and tests under *where* and run pytest on them."""
    for block in page_blocks:
        if block.lang == "python" and block.role in ("module", "test"):
            target = where / str(block.title)
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_text(block.source, encoding="utf-8")
    (where / "pytest.ini").write_text("[pytest]\n", encoding="utf-8")
    env = {**os.environ, "PYTHONPATH": str(where / "src"), "PYTHONDONTWRITEBYTECODE": "1"}
    return subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "tests"],
        cwd=where,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )


# -- the tests --------------------------------------------------------------------------


def test_docs_have_python_examples() -> None:
    assert len(_examples()) >= 20


def test_markers_are_valid() -> None:
    for page in pages():
        check_markers(parse_blocks(page))


@pytest.mark.parametrize("example", _examples())
def test_example(example: Example) -> None:
    run_example(example, parse_blocks(example.first.path))


@pytest.mark.parametrize("page", _pages_with("module"))
def test_example_modules_import(page: Path) -> None:
    blocks = parse_blocks(page)
    with page_modules(blocks) as finder:
        for name in sorted(finder.blocks):
            importlib.import_module(name)


@pytest.mark.parametrize("page", _pages_with("test"))
def test_example_project_tests_pass(page: Path, tmp_path: Path) -> None:
    result = run_project_tests(parse_blocks(page), tmp_path)
    assert result.returncode == 0, result.stdout + result.stderr
    assert " passed" in result.stdout, result.stdout


def test_toml_examples_are_valid() -> None:
    from msgbridge.config import parse_config

    checked = 0
    for block in _all_blocks():
        if block.lang != "toml":
            continue
        data = tomllib.loads(block.source)
        if block.title == "msgbridge.toml":
            parse_config(data, block.where)
            checked += 1
    assert checked >= 1


# -- tables that mirror code ------------------------------------------------------------


def _table_rows(path: Path, first_header: str) -> list[list[str]]:
    """Body rows of the Markdown tables whose first header cell is *first_header*."""
    rows: list[list[str]] = []
    inside = False
    for line in path.read_text(encoding="utf-8").split("\n"):
        if not line.startswith("|"):
            inside = False
            continue
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        if cells[0].lower() == first_header:
            inside = True
        elif inside and not set(cells[0]) <= set("-: "):
            rows.append([c.replace("`", "") for c in cells])
    return rows


@pytest.mark.parametrize(
    ("page", "adapter_ids"),
    [
        ("adapters/highlevel.md", ["highlevel", "leadway", "hoop"]),
        ("adapters/hubspot.md", ["hubspot"]),
    ],
)
def test_mapping_tables_match_the_adapters(page: str, adapter_ids: list[str]) -> None:
    from msgbridge import AdapterRegistry, DeliveryState

    rows = _table_rows(DOCS / page, "neutral")
    documented = {row[0]: (row[1], row[2].split()[0]) for row in rows}
    assert set(documented) == {s.value for s in DeliveryState}, documented
    registry = AdapterRegistry.from_entry_points()
    for adapter_id in adapter_ids:
        capabilities = registry.get(adapter_id).capabilities
        for state in DeliveryState:
            mapping = capabilities.mapping(state)
            expected = (mapping.vendor_value or "—", mapping.fidelity.value)
            assert documented[state.value] == expected, (adapter_id, state)


def test_error_table_matches_msgbridge_errors() -> None:
    from msgbridge import errors

    rows = _table_rows(DOCS / "errors.md", "class")
    documented = {row[0]: row for row in rows}
    assert set(documented) == set(errors.__all__)
    for name, row in documented.items():
        cls = getattr(errors, name)
        parent = cls.__bases__[0].__name__
        assert row[1] == ("—" if name == "MessagingError" else parent), name
        retryable = row[3].split()[0].rstrip(";,").lower()
        assert retryable == ("yes" if cls.default_retryable else "no"), name


# -- the harness itself must be able to fail ---------------------------------------------


def _page(tmp_path: Path, text: str) -> Path:
    page = tmp_path / "page.md"
    page.write_text(textwrap.dedent(text), encoding="utf-8")
    return page


def test_a_broken_example_fails(tmp_path: Path) -> None:
    page = _page(
        tmp_path,
        """
        Text.

        ```python
        from msgbridge import MessageStatus

        MessageStatus("", "delivered")
        ```
        """,
    )
    blocks = parse_blocks(page)
    (example,) = group_examples(blocks)
    from msgbridge.errors import InvalidStatus

    with pytest.raises(InvalidStatus) as caught:
        run_example(example, blocks)
    frames = traceback.extract_tb(caught.value.__traceback__)
    assert (str(page), 7) in [(f.filename, f.lineno) for f in frames]


def test_continue_shares_the_namespace_and_modules_import(tmp_path: Path) -> None:
    page = _page(
        tmp_path,
        """
        ```python title="src/docs_pkg/__init__.py"
        VALUE = 41
        ```

        ```python
        import docs_pkg

        x = docs_pkg.VALUE
        ```

        <!-- test: continue -->

        ```python
        assert x + 1 == 42
        ```
        """,
    )
    blocks = parse_blocks(page)
    check_markers(blocks)
    (example,) = group_examples(blocks)
    assert len(example.blocks) == 2
    run_example(example, blocks)
    assert "docs_pkg" not in sys.modules


@pytest.mark.parametrize(
    "text",
    [
        "<!-- test: skip -->\n\n```python\npass\n```\n",
        "<!-- test: sometimes because -->\n```python\npass\n```\n",
        "<!-- test: continue -->\n```python\npass\n```\n",
        "<!-- test: skip reason -->\nSome text.\n\n```python\npass\n```\n",
        "<!-- test: skip reason -->\n```toml\na = 1\n```\n",
        "```python\npass\n",
    ],
    ids=["skip-without-reason", "unknown", "continue-first", "detached", "not-python", "unclosed"],
)
def test_bad_markers_are_refused(tmp_path: Path, text: str) -> None:
    page = _page(tmp_path, text)
    with pytest.raises(ValueError, match=r"page\.md:\d+"):
        check_markers(parse_blocks(page))


def test_indented_fences_are_dedented(tmp_path: Path) -> None:
    page = _page(
        tmp_path,
        """
        === "Sync"

            ```python
            if True:
                pass
            ```
        """,
    )
    (block,) = parse_blocks(page)
    assert block.source == "if True:\n    pass\n"


# -- the site ---------------------------------------------------------------------------


def test_mkdocs_build_strict(tmp_path: Path) -> None:
    for module in ("mkdocs", "material", "mkdocstrings_handlers.python"):
        pytest.importorskip(module, reason="the docs extra is not installed")
    result = subprocess.run(  # noqa: S603 - our own interpreter, fixed arguments
        [
            sys.executable,
            "-m",
            "mkdocs",
            "build",
            "--strict",
            "--config-file",
            str(ROOT / "mkdocs.yml"),
            "--site-dir",
            str(tmp_path / "site"),
        ],
        cwd=ROOT,
        env={**os.environ, "NO_MKDOCS_2_WARNING": "1"},
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr
