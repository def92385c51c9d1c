import pytest

from bench import replay, report
from services.cli import main as cli


def test_replay_and_report_get_their_options_whatever_the_order(monkeypatch: pytest.MonkeyPatch) -> None:
    seen: list[list[str]] = []
    monkeypatch.setattr(replay, "main", lambda argv: seen.append(argv) or 0)
    monkeypatch.setattr(report, "main", lambda argv: seen.append(argv) or 0)
    assert cli.main(["replay", "--workload", "support", "--concurrency", "4", "-n", "12"]) == 0
    assert cli.main(["report", "RUN", "--baseline", "BASE"]) == 0
    assert seen == [["--workload", "support", "--concurrency", "4", "-n", "12"], ["RUN", "--baseline", "BASE"]]


def test_other_commands_still_reject_unknown_options() -> None:
    with pytest.raises(SystemExit):
        cli.main(["status", "--bogus"])
