"""Every link and path a reader is sent to exists: relative links in
README.md and docs/*.md, every repository path they name (`service/...`,
`Makefile`, and test modules as `tests/unit/x.py` or `unit/x.py`), and every
test or class they name as `path::name`, so the docs cannot point at a file
or a test that moved or never was."""

from __future__ import annotations

import re
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent.parent
DOCS = sorted([ROOT / "README.md", *(ROOT / "docs").glob("*.md")])

# [text](target), not an image's or a web address.
LINK = re.compile(r"\[[^\]]*\]\(([^)\s]+)\)")
# Top-level entries a path can start with; generated ones (gen/, var/) and
# paths under DATA_DIR are not the repository's.
TOP = sorted(
    {
        p.split("/", 1)[0]
        for p in subprocess.run(
            ["git", "ls-files"], cwd=ROOT, capture_output=True, text=True, check=True
        ).stdout.split()
    }
)
TOP_FILES = [t for t in TOP if (ROOT / t).is_file() and t != ".gitignore"]
TOP_DIRS = [t for t in TOP if (ROOT / t).is_dir() and not t.startswith(".")]
PATH = re.compile(
    r"(?<![\w./$-])((?:"
    + "|".join(re.escape(d) for d in TOP_DIRS)
    + r")/[\w./*{}<>-]*|(?:"
    + "|".join(re.escape(f) for f in TOP_FILES)
    + r")(?![\w.-]))"
)

# Test modules named relative to tests/ (`e2e/test_grpc.py`).
TEST_DIRS = sorted(
    d.name for d in (ROOT / "tests").iterdir() if d.is_dir() and d.name[0] not in "_."
)
TEST_PATH = re.compile(
    r"(?<![\w./-])((?:" + "|".join(TEST_DIRS) + r")/[\w./-]+\.py)(?![\w-])"
)
NAMED = re.compile(r"(?<![\w.-])([\w./-]+\.py)::(\w+)")


def links(text: str) -> list[str]:
    out = []
    for target in LINK.findall(text):
        if re.match(r"[a-z][a-z+.-]*:", target) or target.startswith("#"):
            continue  # a web address, a mailto:, or an anchor in the same page
        out.append(target.split("#", 1)[0])
    return out


def paths(text: str) -> list[str]:
    """Repository paths named in the text, with a trailing `::test` or
    `:line` removed; globs (`test_*.py`) and placeholders are left out."""
    out = []
    for found in PATH.findall(text):
        path = found.split("::", 1)[0].rstrip(".,;:")
        if any(c in path for c in "*<>{}") or path.endswith("/..."):
            continue
        out.append(path)
    out += ["tests/" + found for found in TEST_PATH.findall(text)]
    return out


def in_repository(path: str) -> Path:
    top = path.split("/", 1)[0]
    return ROOT / ("tests/" + path if top in TEST_DIRS else path)


# A test named alone in the docs (`test_x`), not a module (`test_x.py`).
TEST_NAME = re.compile(r"`(test_\w+)`")


def defined_tests() -> set[str]:
    names = set()
    for module in (ROOT / "tests").rglob("*.py"):
        names.add(module.stem)
        found = re.findall(
            r"^\s*(?:async def|def|class) (\w+)", module.read_text(), re.M
        )
        names.update(found)
    return names


def unnamed(text: str, known: set[str] | None = None) -> list[str]:
    """`path::name` references whose module defines no such test or class."""
    out = []
    for path, name in NAMED.findall(text):
        module = in_repository(path)
        defines = re.compile(rf"^\s*(?:async def|def|class) {name}\b", re.M)
        if module.is_file() and not defines.search(module.read_text()):
            out.append(f"{path}::{name}")
    known = defined_tests() if known is None else known
    out += [name for name in TEST_NAME.findall(text) if name not in known]
    return out


def generated(path: str) -> bool:
    """Output the repository ignores (bench/out/, build/): made by a run.
    Asked as a file and as a directory: a `dir/` pattern only matches a
    path git knows to be a directory, and a run may not have made it yet."""
    for asked in (path, path.rstrip("/") + "/"):
        ignored = subprocess.run(["git", "check-ignore", "-q", asked], cwd=ROOT)
        if ignored.returncode == 0:
            return True
    return False


def missing(doc: Path) -> list[str]:
    text = doc.read_text(encoding="utf-8")
    gone = [f"link {t}" for t in links(text) if not (doc.parent / t).resolve().exists()]
    gone += [
        f"path {p}" for p in paths(text) if not (ROOT / p).exists() and not generated(p)
    ]
    gone += [f"name {n}" for n in unnamed(text)]
    return gone


@pytest.mark.parametrize("doc", DOCS, ids=lambda d: d.relative_to(ROOT).as_posix())
def test_every_link_and_path_in_the_docs_exists(doc: Path) -> None:
    assert not missing(doc), "\n".join(missing(doc))


def test_the_docs_name_paths_at_all() -> None:
    """The check reads something: the README names files of every part."""
    named = {p.split("/", 1)[0] for p in paths((ROOT / "README.md").read_text())}
    assert {"service", "projections", "tests", "docs"} <= named, named


def test_a_wrong_link_or_path_is_caught(tmp_path: Path) -> None:
    doc = tmp_path / "x.md"
    doc.write_text(
        "See [the runbook](nowhere.md#top), `service/not_there.py` and "
        "tests/unit/test_gone.py::test_x, but not `tests/e2e/test_*.py` "
        "or `bench/out/results.md`; e2e/test_gone.py, "
        "unit/test_config.py::test_defaults and "
        "tests/unit/test_config.py::test_never_written; `test_defaults` and "
        "`test_renamed_long_ago`."
    )
    assert missing(doc) == [
        "link nowhere.md",
        "path service/not_there.py",
        "path tests/unit/test_gone.py",
        "path tests/e2e/test_gone.py",
        "name tests/unit/test_config.py::test_never_written",
        "name test_renamed_long_ago",
    ]
    doc.write_text("See [web](https://example.com), [here](#a), `pyproject.toml`.")
    assert missing(doc) == []
