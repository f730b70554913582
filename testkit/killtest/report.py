"""The kill test's figures, the checks they must pass, and their text."""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass
class Report:
    seed: int
    data_dir: str
    events: int = 0  # distinct event ids sent
    customers: int = 0
    deliveries_planned: int = 0
    deliveries_made: int = 0  # HTTP requests, retries included
    answers_2xx: int = 0
    accepted: int = 0
    duplicate: int = 0
    connection_errors: int = 0
    timeouts: int = 0
    answers_503: int = 0
    unexpected_answers: dict[str, int] = field(default_factory=dict)
    retries: int = 0
    gave_up: int = 0
    kills: int = 0
    kills_under_load: int = 0
    in_flight_at_kills: int = 0
    restart_failures: list[str] = field(default_factory=list)
    mean_restart_seconds: float = 0.0
    acknowledged_ids: int = 0
    committed_answer_lost: int = 0  # stored, but its `accepted` died in a kill
    stored_events: int = 0
    stored_known: int = 0
    stored_unknown: int = 0
    sent_not_stored: int = 0
    acknowledged_lost: int = 0
    stored_twice: int = 0
    accepted_twice: int = 0
    inconsistent_positions: int = 0  # an id answered with different positions
    wrong_positions: int = 0  # the answered position holds another event
    dead_letters: int = 0
    expected_dead_letters: int = 0
    event_count_sum: int = 0
    expected_event_count_sum: int = 0  # stored known-type events - dead letters
    customers_in_read_models: int = 0
    customers_unlike_pure_fold: int = 0
    rebuild_generation: tuple[int, int] = (0, 0)
    customers_unlike_rebuild: int = 0
    load_seconds: float = 0.0
    check_seconds: float = 0.0
    rebuild_seconds: float = 0.0
    total_seconds: float = 0.0
    error_log_lines: int = 0
    warning_log_lines: int = 0
    check_error: str = ""  # the checks could not finish (e.g. no catch-up)

    @property
    def applied_twice(self) -> int:
        """Applications beyond one per stored known-type event (never negative
        here; a shortfall is reported as applied_missing)."""
        return max(0, self.event_count_sum - self.expected_event_count_sum)

    @property
    def applied_missing(self) -> int:
        return max(0, self.expected_event_count_sum - self.event_count_sum)

    def failures(self) -> list[str]:
        checks = {
            "restart failed": len(self.restart_failures),
            f"checks did not finish ({self.check_error})": bool(self.check_error),
            "unexpected (non-2xx, non-503) answers": sum(
                self.unexpected_answers.values()
            ),
            "deliveries given up": self.gave_up,
            "events sent but never stored": self.sent_not_stored,
            "acknowledged events lost": self.acknowledged_lost,
            "stored twice": self.stored_twice,
            "ids accepted twice": self.accepted_twice,
            "ids answered with different positions": self.inconsistent_positions,
            "answered positions holding another event": self.wrong_positions,
            "applied twice": self.applied_twice,
            "applied missing": self.applied_missing,
            "dead letters unlike the pure fold": abs(
                self.dead_letters - self.expected_dead_letters
            ),
            "customers unlike the pure fold": self.customers_unlike_pure_fold,
            "customers unlike a rebuild": self.customers_unlike_rebuild,
        }
        failed = [f"{name}: {n}" for name, n in checks.items() if n]
        checked = not (self.restart_failures or self.check_error)
        if checked and self.rebuild_generation[1] <= self.rebuild_generation[0]:
            failed.append(
                f"rebuild did not switch generations: {self.rebuild_generation}"
            )
        return failed

    @property
    def ok(self) -> bool:
        return not self.failures()

    def text(self) -> str:
        rows = [
            ("seed", self.seed),
            ("data dir", self.data_dir),
            ("events sent (distinct ids)", self.events),
            ("customers", self.customers),
            ("deliveries planned (with duplicates)", self.deliveries_planned),
            ("deliveries made (HTTP requests)", self.deliveries_made),
            ("2xx answers", self.answers_2xx),
            ("  accepted", self.accepted),
            ("  duplicate", self.duplicate),
            ("connection refused/reset", self.connection_errors),
            ("timeouts", self.timeouts),
            ("503 answers", self.answers_503),
            ("other answers", sum(self.unexpected_answers.values())),
            ("retries", self.retries),
            ("deliveries given up", self.gave_up),
            ("kills (SIGKILL)", self.kills),
            ("  while deliveries were pending", self.kills_under_load),
            ("  requests in flight at the kills", self.in_flight_at_kills),
            ("  mean restart to ready (s)", f"{self.mean_restart_seconds:.2f}"),
            ("acknowledged ids", self.acknowledged_ids),
            (
                "  committed but `accepted` lost in a kill",
                self.committed_answer_lost,
            ),
            ("stored events", self.stored_events),
            ("  of known types", self.stored_known),
            ("  of unknown types", self.stored_unknown),
            (
                "dead letters (expected)",
                f"{self.dead_letters} ({self.expected_dead_letters})",
            ),
            ("customers in the read models", self.customers_in_read_models),
            ("sum of event_count", self.event_count_sum),
            ("known-type events - dead letters", self.expected_event_count_sum),
            ("ACKNOWLEDGED EVENTS LOST", self.acknowledged_lost),
            ("STORED TWICE", self.stored_twice),
            ("APPLIED TWICE", self.applied_twice),
            ("applied missing", self.applied_missing),
            ("events sent but never stored", self.sent_not_stored),
            ("ids accepted twice", self.accepted_twice),
            ("ids answered with different positions", self.inconsistent_positions),
            ("answered positions holding another event", self.wrong_positions),
            ("customers unlike the pure fold", self.customers_unlike_pure_fold),
            (
                "rebuild generation (before -> after)",
                "{} -> {}".format(*self.rebuild_generation),
            ),
            ("CUSTOMERS UNLIKE A REBUILD", self.customers_unlike_rebuild),
            ("service error log lines", self.error_log_lines),
            ("service warning log lines", self.warning_log_lines),
            ("load phase (s)", f"{self.load_seconds:.1f}"),
            ("checks (s)", f"{self.check_seconds:.1f}"),
            ("  of which rebuild (s)", f"{self.rebuild_seconds:.1f}"),
            ("total (s)", f"{self.total_seconds:.1f}"),
        ]
        width = max(len(name) for name, _ in rows)
        lines = [f"{name:<{width}}  {value}" for name, value in rows]
        for answer, n in sorted(self.unexpected_answers.items()):
            lines.append(f"  unexpected answer x{n}: {answer}")
        failed = self.failures()
        lines.append("RESULT: " + ("OK" if not failed else "FAILED"))
        lines.extend(f"  FAILED {f}" for f in failed)
        return "\n".join(lines)
