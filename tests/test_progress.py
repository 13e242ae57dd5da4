"""Progress (issue 10, item 10): rewritten in place on a terminal; in a log (not a terminal) a plain
line for the first step, then at most one every few seconds."""

from __future__ import annotations

from settlement.jobs import progress_printer


def test_progress_in_a_log_is_throttled(capsys) -> None:
    now = [0.0]
    say = progress_printer(enabled=False, every_s=5.0, clock=lambda: now[0])
    for t, msg in [
        (0.0, "reading 10 records"),
        (1.0, "a"),
        (4.9, "b"),
        (5.0, "pricing 10 records"),
        (7.0, "c"),
    ]:
        now[0] = t
        say(msg)
    assert capsys.readouterr().err.splitlines() == [
        "[roamledger] reading 10 records",
        "[roamledger] pricing 10 records",
    ]


def test_progress_on_a_terminal_rewrites_one_line(capsys) -> None:
    say = progress_printer(enabled=True)
    say("reading")
    say("pricing 3 records")
    err = capsys.readouterr().err
    assert "\n" not in err and err.count("\r\x1b[2K") == 2 and err.endswith("pricing 3 records …")
