"""An irreversible command asks on a terminal, and only the exact answer
confirms; a script must say --yes."""

from __future__ import annotations

import io

from service.cli.confirm import confirmed


class Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_the_exact_answer_confirms() -> None:
    err = io.StringIO()
    assert confirmed(
        "Erasing c-1", "c-1", yes=False, stdin=Terminal("c-1\n"), stderr=err
    )
    assert "cannot be undone" in err.getvalue() and "'c-1'" in err.getvalue()


def test_anything_else_does_not() -> None:
    for typed in ("y\n", "yes\n", "\n", "c-2\n", ""):
        err = io.StringIO()
        ok = confirmed(
            "Erasing c-1", "c-1", yes=False, stdin=Terminal(typed), stderr=err
        )
        assert not ok and "nothing was done" in err.getvalue()


def test_without_a_terminal_it_refuses_and_says_how() -> None:
    err = io.StringIO()
    assert not confirmed(
        "Erasing c-1", "c-1", yes=False, stdin=io.StringIO("c-1\n"), stderr=err
    )
    assert "--yes" in err.getvalue()


def test_yes_asks_nothing() -> None:
    stdin = Terminal("")
    assert confirmed("Erasing c-1", "c-1", yes=True, stdin=stdin, stderr=io.StringIO())
    assert stdin.tell() == 0
