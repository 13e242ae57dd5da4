"""Exit status and messages: 0 done, 1 --fail-on hit, 2 usage or input error, 70 a bug, 130 Ctrl-C —
always one sentence on stderr, never a traceback, and nothing half-written."""

from __future__ import annotations

import errno
import gzip
import json
import os
import socket
import stat
import subprocess
import sys
from pathlib import Path

import pytest
from test_settle import MONTH, cdr, write_month

import api.cli.price
import api.cli.price_run
from api.cli import build_parser, main, os_error_message
from api.http.routers.settlements import MONTH as API_MONTH
from settlement.rules import MONTH_PATTERN, parse_month


def settle(tmp: Path, *extra: str, cdrs: Path | None = None, with_tariffs: bool = True) -> list[str]:
    src, tariffs, contracts = write_month(tmp, [cdr("A1", reported="9.99"), cdr("A2")], ("not json",))
    args = ["settle", "--cdrs", str(cdrs or src), "--month", MONTH, "--contracts", str(contracts)]
    args += ["--tariffs", str(tariffs)] if with_tariffs else []
    return [*args, *extra]


def test_help_documents_the_exit_status(capsys) -> None:
    for command in ("price", "reconcile", "settle"):
        with pytest.raises(SystemExit):
            build_parser().parse_args([command, "--help"])
        text = capsys.readouterr().out
        assert "exit status:" in text and "130" in text and "--fail-on" in text


def test_a_month_with_problems_exits_0_and_1_only_with_fail_on(tmp_path: Path, capsys) -> None:
    assert main(settle(tmp_path, "--out", str(tmp_path / "a"))) == 0
    assert main(settle(tmp_path, "--out", str(tmp_path / "b"), "--fail-on", "rejects")) == 1
    assert "1 records rejected" in capsys.readouterr().err
    assert main(settle(tmp_path, "--out", str(tmp_path / "c"), "--fail-on", "findings")) == 1
    assert "1 CDRs not matching" in capsys.readouterr().err
    assert (tmp_path / "c" / "manifest.json").exists(), "--fail-on still writes every file"


def test_a_month_with_no_session_is_an_input_error(tmp_path: Path, capsys) -> None:
    args = settle(tmp_path, "--out", str(tmp_path / "out"))
    args[args.index("--month") + 1] = "2025-03"
    assert main(args) == 2
    err = capsys.readouterr().err
    assert "no session of the 3 records ended in 2025-03 (2 out of month). Hint: check --month" in err
    assert "Traceback" not in err


def test_an_unknown_locale_is_refused_before_any_work(tmp_path: Path, capsys) -> None:
    assert main(settle(tmp_path, "--out", str(tmp_path / "out"), "--locale", "xx_YY")) == 2
    assert "--locale xx_YY: unknown locale" in capsys.readouterr().err
    assert not (tmp_path / "out").exists()


def test_settle_without_tariffs_is_an_input_error(tmp_path: Path, capsys) -> None:
    assert main(settle(tmp_path, "--out", str(tmp_path / "out"), with_tariffs=False)) == 2
    assert "no tariff matched any of the 2 CDRs. Hint: give the CPO's tariffs with --tariffs" in (
        capsys.readouterr().err
    )


def test_price_nothing_read_and_all_rejected(tmp_path: Path, capsys) -> None:
    empty = tmp_path / "empty.ndjson"
    empty.write_text("")
    assert main(["price", "--out", str(tmp_path / "a.ndjson"), str(empty)]) == 2
    assert "nothing read" in capsys.readouterr().err
    garbage = tmp_path / "garbage.ndjson"
    garbage.write_text("not json\n{}\n")
    assert main(["price", "--out", str(tmp_path / "b.ndjson"), str(garbage)]) == 2
    assert "every record was rejected (2)" in capsys.readouterr().err
    rejects = (tmp_path / "b.ndjson.rejects.ndjson").read_text().splitlines()
    assert len(rejects) == 2, "the rejects are written so the user can see why"


def test_ctrl_c_writes_nothing(tmp_path: Path, capsys, monkeypatch) -> None:
    src, tariffs, _ = write_month(tmp_path, [cdr("A1")])
    calls = []

    def interrupted(*args, **kwargs) -> None:
        calls.append(args)
        raise KeyboardInterrupt

    monkeypatch.setattr(api.cli.price_run, "write_ndjson", interrupted)
    before = sorted(p.name for p in tmp_path.iterdir())
    assert main(["price", "--tariffs", str(tariffs), "--out", str(tmp_path / "p.ndjson"), str(src)]) == 130
    assert calls, "interrupted while writing"
    assert "interrupted, nothing written" in capsys.readouterr().err
    assert sorted(p.name for p in tmp_path.iterdir()) == before


def test_a_bug_is_one_sentence_and_exit_70(tmp_path: Path, capsys, monkeypatch) -> None:
    src, tariffs, _ = write_month(tmp_path, [cdr("A1")])

    def broken(*args, **kwargs):
        return {}["no such key"]

    monkeypatch.setattr(api.cli.price_run, "price_inputs", broken)
    assert main(["price", "--tariffs", str(tariffs), "--out", str(tmp_path / "p.ndjson"), str(src)]) == 70
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "internal error (KeyError" in err and "please report" in err


def test_reconcile_fail_on_findings(tmp_path: Path, capsys) -> None:
    src, tariffs, _ = write_month(tmp_path, [cdr("A1", reported="9.99"), cdr("A2")])
    out = tmp_path / "r.ndjson"
    args = ["reconcile", "--tariffs", str(tariffs), "--out", str(out), str(src)]
    assert main(args) == 0
    assert main([*args, "--fail-on", "findings"]) == 1
    assert json.loads((tmp_path / "r.ndjson.summary.json").read_text())["by_status"]["OVERCHARGED"] == 1


def test_settle_never_replaces_a_folder_it_did_not_write(tmp_path: Path, capsys) -> None:
    mydocs = tmp_path / "mydocs"
    mydocs.mkdir()
    (mydocs / "thesis.txt").write_text("four years of work")
    assert main(settle(tmp_path, "--out", str(mydocs))) == 2
    assert "holds files that are not a roamledger settlement run" in capsys.readouterr().err
    assert (mydocs / "thesis.txt").read_text() == "four years of work"
    assert sorted(p.name for p in tmp_path.iterdir() if p.name.startswith(".")) == []


def test_settle_refuses_an_output_folder_holding_its_inputs(tmp_path: Path, capsys) -> None:
    args = settle(tmp_path, "--out", str(tmp_path))
    assert main(args) == 2
    assert "is inside it" in capsys.readouterr().err
    assert (tmp_path / "cdrs.ndjson").exists() and (tmp_path / "contracts.json").exists()


def test_settle_replaces_an_earlier_run_but_not_what_was_added_to_it(tmp_path: Path, capsys) -> None:
    out = tmp_path / "out"
    assert main(settle(tmp_path, "--out", str(out))) == 0
    first = sorted(p.name for p in out.iterdir())
    assert main(settle(tmp_path, "--out", str(out))) == 0, "a rerun replaces the earlier run"
    assert sorted(p.name for p in out.iterdir()) == first
    (out / "notes.txt").write_text("mine")
    assert main(settle(tmp_path, "--out", str(out))) == 2
    assert "besides an earlier run it holds notes.txt" in capsys.readouterr().err
    assert (out / "notes.txt").exists()


def test_settle_keeps_what_was_added_inside_a_statement_folder(tmp_path: Path, capsys) -> None:
    """A file put beside an earlier run's statement (an approval, a signed copy) is the user's."""
    out = tmp_path / "out"
    assert main(settle(tmp_path, "--out", str(out))) == 0
    folder = next(p for p in out.iterdir() if p.is_dir())
    (folder / "approved-by-cfo.txt").write_text("ok")
    assert main(settle(tmp_path, "--out", str(out))) == 2
    assert f"besides an earlier run it holds {folder.name}/approved-by-cfo.txt" in capsys.readouterr().err
    assert (folder / "approved-by-cfo.txt").read_text() == "ok"
    (folder / "approved-by-cfo.txt").unlink()
    (folder / "signed").mkdir()
    assert main(settle(tmp_path, "--out", str(out))) == 2
    assert (folder / "signed").is_dir()
    (folder / "signed").rmdir()
    assert main(settle(tmp_path, "--out", str(out))) == 0


def test_the_output_folder_follows_the_umask(tmp_path: Path) -> None:
    old = os.umask(0o027)
    try:
        assert main(settle(tmp_path, "--out", str(tmp_path / "out"))) == 0
    finally:
        os.umask(old)
    assert stat.S_IMODE((tmp_path / "out").stat().st_mode) == 0o750


def test_a_store_that_cannot_be_opened_is_an_input_error(tmp_path: Path, capsys) -> None:
    """A store URL whose SQLite folder does not exist (or whose server does not answer) is the
    user's input: exit 2 with the URL and the reason, not exit 70 (a bug). (settle and close refuse
    a missing file before: see the next tests; import and party add may create a store.)"""
    url = f"sqlite:///{tmp_path / 'missing' / 'store.db'}"
    cdrs = tmp_path / "c.ndjson"
    cdrs.write_text("{}\n", encoding="utf-8")
    for argv in (
        ["import", "--store", url, str(cdrs)],
        ["party", "add", "NL*ABC", "--store", url],
    ):
        assert main(argv) == 2, argv
        err = capsys.readouterr().err
        assert "cannot be opened" in err and "missing" in err and "Traceback" not in err
    assert not (tmp_path / "out").exists()


@pytest.mark.parametrize("command", ["price", "reconcile"])
def test_price_and_reconcile_never_write_over_their_inputs(tmp_path: Path, command: str, capsys) -> None:
    src, tariffs, _ = write_month(tmp_path, [cdr("A1"), cdr("A2")], ())
    before = src.read_bytes()
    assert main([command, "--tariffs", str(tariffs), "--out", str(src), str(src)]) == 2
    assert "the run would write over its input" in capsys.readouterr().err
    assert src.read_bytes() == before
    sibling = src.parent / f"{src.name}.rejects.ndjson"  # a file the run would write beside --out
    sibling.write_text(src.read_text())
    assert main([command, "--tariffs", str(tariffs), "--out", str(src), str(sibling)]) == 2
    assert sibling.read_text() == before.decode()


@pytest.mark.parametrize("command", ["price", "reconcile"])
def test_a_failed_run_leaves_an_existing_output_as_it_was(tmp_path: Path, command: str, capsys) -> None:
    """Every record rejected: the rejects file says why; the user's file under --out stays, and so
    do an earlier run's files (its rejects included): the failed run's rejects and counts are
    OUT.failed.*, named in the error; with no earlier output they take the output's names."""
    bad = tmp_path / "bad.ndjson"
    bad.write_text("garbage\n")
    report = tmp_path / "report.csv"
    report.write_text("my,own,report\n")
    (tmp_path / "report.csv.rejects.ndjson").write_text("earlier\n")
    _, tariffs, _ = write_month(tmp_path, [cdr("A1")], ())
    assert main([command, "--tariffs", str(tariffs), "--out", str(report), str(bad)]) == 2
    failed = tmp_path / "report.csv.failed.rejects.ndjson"
    assert capsys.readouterr().err.strip().splitlines()[-1] == (
        f"roamledger: error: every record was rejected (1); the reasons are in {failed} "
        f"({report} is kept as it was)"
    )
    assert report.read_text() == "my,own,report\n"
    assert (tmp_path / "report.csv.rejects.ndjson").read_text() == "earlier\n"
    assert "BAD_JSON" in failed.read_text()
    counts = "report.csv.failed.meta.json" if command == "price" else "report.csv.failed.summary.json"
    assert (tmp_path / counts).exists()
    assert sorted(p.name for p in tmp_path.iterdir() if p.name.startswith(".")) == []
    new = tmp_path / "new.csv"
    assert main([command, "--tariffs", str(tariffs), "--out", str(new), str(bad)]) == 2
    assert "BAD_JSON" in (tmp_path / "new.csv.rejects.ndjson").read_text() and not new.exists()


@pytest.mark.parametrize(
    ("url", "said"),
    [
        ("m.db", "the store 'm.db' is not a URL"),
        ("mysql://x/y", "the store mysql://x/y is not supported"),
        ("sqlite://x.db", "the store sqlite://x.db cannot be used"),
        ("postgresql+nodriver://x/y", "the store postgresql+nodriver://x/y cannot be used"),
    ],
)
def test_a_store_url_that_is_not_supported_is_an_input_error(
    tmp_path: Path, capsys, url: str, said: str
) -> None:
    """A path or an unsupported URL given as --store is the user's input (exit 2, the supported forms
    named), not exit 70 (a bug): import, settle, close and party alike; nothing is written."""
    cdrs = tmp_path / "c.ndjson"
    cdrs.write_text("{}\n", encoding="utf-8")
    for argv in (
        ["import", "--store", url, str(cdrs)],
        ["settle", "--store", url, "--month", "2026-10", "--out", str(tmp_path / "out")],
        ["close", "--store", url, "--month", "2026-10"],
    ):
        assert main(argv) == 2, argv
        err = capsys.readouterr().err
        assert said in err and "sqlite:///PATH" in err and "postgresql+psycopg://" in err, err
        assert "Traceback" not in err and "bug" not in err
    assert "e.g. sqlite:///m.db" in main_err(["close", "--store", "m.db", "--month", "2026-10"], capsys)
    assert not (tmp_path / "out").exists()


def main_err(argv: list[str], capsys) -> str:
    main(argv)
    return capsys.readouterr().err


def test_settle_and_close_refuse_an_sqlite_store_that_does_not_exist(tmp_path: Path, capsys) -> None:
    """settle --store and close read an existing store: a misspelled SQLite path is refused (exit 2,
    the path named) instead of being created empty, and settle writes no output folder."""
    typo = tmp_path / "typo.db"
    url = f"sqlite:///{typo}"
    for argv in (
        ["settle", "--store", url, "--month", "2026-10", "--out", str(tmp_path / "o9")],
        ["close", "--store", url, "--month", "2026-10"],
        ["close", "--store", url, "--month", "2026-10", "--settle"],
    ):
        assert main(argv) == 2, argv
        err = capsys.readouterr().err
        assert f"does not exist (no file {typo})" in err and "Traceback" not in err, err
    assert not typo.exists()
    assert not (tmp_path / "o9").exists()


def test_ctrl_c_while_the_command_loads_is_one_sentence(monkeypatch, capsys) -> None:
    """Loading a command's modules takes seconds: Ctrl-C then is exit 130 and one sentence, not a
    KeyboardInterrupt traceback."""

    def interrupted(command: str) -> None:
        raise KeyboardInterrupt

    monkeypatch.setattr(api.cli, "command_module", interrupted)
    assert main(["settle", "--month", "2026-10", "--out", "o"]) == 130
    assert capsys.readouterr().err == "roamledger: error: interrupted, nothing written\n"


def test_settle_loads_dask_only_for_the_dask_engine() -> None:
    """``settle`` (its --help, the default engine) does not import dask.distributed (seconds, and
    tornado); :mod:`settlement.cluster` loads it when the dask engine starts."""
    code = (
        "import sys\n"
        "from api.cli import build_parser, command_module\n"
        "build_parser('settle'); command_module('settle')\n"
        "assert 'dask.distributed' not in sys.modules and 'tornado' not in sys.modules\n"
        "from settlement.cluster import DISTRIBUTED\n"
        "assert DISTRIBUTED == 'dask.distributed'\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True, cwd=Path(__file__).resolve().parents[1])


def test_a_typo_in_the_contracts_file_is_an_input_error(tmp_path: Path, capsys) -> None:
    """A pair key written NL-ABC/DE-MSP would drop its fees silently: exit 2 naming the key."""
    args = settle(tmp_path, "--out", str(tmp_path / "out"))
    contracts = Path(args[args.index("--contracts") + 1])
    contracts.write_text(json.dumps({"pairs": {"NL-ABC/DE-MSP": {"roaming_fee_per_session": "0.15"}}}))
    assert main(args) == 2
    assert "pairs.NL-ABC/DE-MSP: not CPO/EMSP, e.g. NL*ECO/DE*MSP" in capsys.readouterr().err
    assert not (tmp_path / "out").exists()


def test_files_a_folder_holds_but_are_not_read_are_named(tmp_path: Path, capsys) -> None:
    """A CDR folder with a .txt and a .ndjson.gz: both named in one warning line and in the
    manifest (nothing skipped silently); a gzip file given by name is refused (exit 2)."""
    args = settle(tmp_path, "--out", str(tmp_path / "out"))
    src = Path(args[args.index("--cdrs") + 1])
    cdrs = tmp_path / "cdrs"
    cdrs.mkdir()
    (cdrs / src.name).write_bytes(src.read_bytes())
    (cdrs / "c.ndjson.gz").write_bytes(gzip.compress(src.read_bytes()))
    (cdrs / "d.txt").write_text("notes\n", encoding="utf-8")
    args[args.index("--cdrs") + 1] = str(cdrs)
    assert main(args) == 0
    err = capsys.readouterr().err
    warning = [line for line in err.splitlines() if "warning" in line]
    assert len(warning) == 1 and "2 entries" in warning[0], err
    assert f"{cdrs / 'c.ndjson.gz'}, {cdrs / 'd.txt'}" in warning[0]
    manifest = json.loads((tmp_path / "out" / "manifest.json").read_text(encoding="utf-8"))
    assert manifest["skipped_inputs"] == [str(cdrs / "c.ndjson.gz"), str(cdrs / "d.txt")]
    args[args.index("--cdrs") + 1] = str(cdrs / "c.ndjson.gz")
    args[args.index("--out") + 1] = str(tmp_path / "gz")
    assert main(args) == 2
    assert "compressed input (gzip) is not supported. Hint: gunzip it first" in capsys.readouterr().err
    assert not (tmp_path / "gz").exists()


@pytest.mark.parametrize("month", ["11/2026", "2026-11-01", "2026-1", "2026-13", "2026-00", "0000-01"])
def test_a_month_not_written_yyyy_mm_is_one_clear_error(tmp_path: Path, capsys, month: str) -> None:
    """One reader of --month for settle, close and the API (2026-1 was taken by the command line
    and refused by the API; 11/2026 and 2026-11-01 failed inside int() and unpacking)."""
    args = settle(tmp_path, "--out", str(tmp_path / "out"))
    args[args.index("--month") + 1] = month
    for argv in (args, ["close", "--store", f"sqlite:///{tmp_path / 'm.db'}", "--month", month]):
        assert main(argv) == 2
        err = capsys.readouterr().err
        assert (
            err.startswith(f"roamledger: error: month {month!r} is not YYYY-MM. Hint: ")
            and err.count("\n") == 1
        )
    assert not (tmp_path / "out").exists()


def test_the_api_reads_a_month_as_the_command_line_does() -> None:
    assert API_MONTH == MONTH_PATTERN
    assert parse_month("2026-01") == (2026, 1)


def test_a_store_that_cannot_be_opened_gets_the_hint_of_its_case(tmp_path: Path, capsys) -> None:
    """A folder given as the SQLite file, a file that is not a database: exit 2 with a hint for that
    case (not "the folder must exist" when it does), not exit 70."""
    cdrs = tmp_path / "c.ndjson"
    cdrs.write_text("{}\n", encoding="utf-8")
    (tmp_path / "junk.db").write_text("junk\n", encoding="utf-8")
    for target, hint in (
        (tmp_path, f"{tmp_path} is a folder; give a file in it"),
        (tmp_path / "junk.db", f"{tmp_path / 'junk.db'} must be an SQLite database"),
    ):
        assert main(["import", "--store", f"sqlite:///{target}", str(cdrs)]) == 2
        err = capsys.readouterr().err
        assert "cannot be opened" in err and hint in err and "folder must exist" not in err, err


def test_serve_on_a_port_in_use_is_one_sentence(capsys) -> None:
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        assert main(["serve", "--host", "127.0.0.1", "--port", str(port)]) == 2
    err = capsys.readouterr().err
    assert f"port {port} is in use on 127.0.0.1. Hint: choose another --port" in err


def test_a_read_only_output_folder_is_named_with_a_hint(tmp_path: Path, monkeypatch, capsys) -> None:
    """The file system refuses the write of a staging file: the folder is named, not the file."""
    staging = tmp_path / "out" / ".p.csv.roamledger-partial-12445"

    def refused(args: object) -> int:
        raise OSError(errno.EROFS, "Read-only file system", str(staging))

    monkeypatch.setattr(api.cli.price, "run", refused)
    assert main(["price", "--out", str(tmp_path / "out" / "p.csv"), "c.ndjson"]) == 2
    err = capsys.readouterr().err
    said = f"cannot write to {tmp_path / 'out'}: read-only file system. Hint: choose another --out"
    assert err == f"roamledger: error: {said}\n"


@pytest.mark.parametrize(
    ("code", "why"),
    [(errno.EPERM, "the folder does not allow writing"), (errno.EACCES, "permission denied")],
)
def test_a_folder_refusing_the_staging_file_is_named_with_a_hint(
    tmp_path: Path, monkeypatch, capsys, code: int, why: str
) -> None:
    """chattr +i or a folder without write permission: the folder and --out, not the staging file;
    the same error on an input file is said as it is (it is no output problem)."""
    staging = tmp_path / "out" / ".p.csv.roamledger-partial-12445"
    failing = [staging]

    def refused(args: object) -> int:
        raise OSError(code, os.strerror(code), str(failing[0]))

    monkeypatch.setattr(api.cli.price, "run", refused)
    assert main(["price", "--out", str(tmp_path / "out" / "p.csv"), "c.ndjson"]) == 2
    said = f"cannot write to {tmp_path / 'out'}: {why}. Hint: choose another --out"
    assert capsys.readouterr().err == f"roamledger: error: {said}\n"
    failing[0] = tmp_path / "c.ndjson"
    assert main(["price", "--out", str(tmp_path / "out" / "p.csv"), "c.ndjson"]) == 2
    hint = "Hint: check its permissions (and its folder's, for an output); or choose another --out"
    assert (
        capsys.readouterr().err
        == f"roamledger: error: {os.strerror(code)}: {tmp_path / 'c.ndjson'}. {hint}\n"
    )


def test_settle_takes_every_repeated_cdrs_and_tariffs_option(tmp_path: Path) -> None:
    """``--cdrs A --cdrs B`` and ``--tariffs X --tariffs Y`` read all four (only the last of each
    was read, silently), as ``price --tariffs`` repeats."""
    src, tariffs, contracts = write_month(tmp_path, [cdr("A1"), cdr("A2", day=6)])
    lines = src.read_text().splitlines(keepends=True)
    (tmp_path / "a.ndjson").write_text(lines[0])
    (tmp_path / "b.ndjson").write_text(lines[1])
    both = json.loads(tariffs.read_text())
    (tmp_path / "t1.json").write_text(json.dumps(both[0]))
    (tmp_path / "t2.json").write_text(json.dumps(both[1]))
    argv = ["settle", "--month", MONTH, "--contracts", str(contracts), "--out", str(tmp_path / "out")]
    argv += ["--cdrs", str(tmp_path / "a.ndjson"), "--tariffs", str(tmp_path / "t1.json")]
    argv += ["--cdrs", str(tmp_path / "b.ndjson"), "--tariffs", str(tmp_path / "t2.json")]
    assert main(argv) == 0
    manifest = json.loads((tmp_path / "out" / "manifest.json").read_text())
    assert manifest["counts"]["read"] == 2 and manifest["counts"]["settled"] == 2
    assert {Path(p).name for p in manifest["inputs"]} == {
        "a.ndjson",
        "b.ndjson",
        "t1.json",
        "t2.json",
        "contracts.json",
    }


def test_settle_history_must_name_earlier_runs(tmp_path: Path, capsys) -> None:
    """``--history`` naming no folder, or a folder without a settle run: one sentence, exit 2,
    before any work (a typo settled the month without the credits and late CDRs it decides); a
    real one is recorded in the manifest's settings."""
    out = tmp_path / "out"
    missing, plain = tmp_path / "nope", tmp_path / "plain"
    plain.mkdir()
    (plain / "manifest.json").write_text("{}")
    for given, words in ((missing, "no such folder"), (plain, "holds no settle run")):
        assert main(settle(tmp_path, "--out", str(out), "--history", str(given))) == 2
        err = capsys.readouterr().err.strip().splitlines()
        assert err == [f"roamledger: error: --history {given}: {words}{err[0].split(words, 1)[1]}"]
        assert "Hint:" in err[0] and not out.exists()
    assert main(settle(tmp_path, "--out", str(tmp_path / "oct"))) == 0
    assert main(settle(tmp_path, "--out", str(out), "--history", str(tmp_path))) == 0  # a folder of runs
    assert json.loads((out / "manifest.json").read_text())["settings"]["history"] == [str(tmp_path)]


@pytest.mark.parametrize("value", ["0", "-5", "x"])
def test_settle_piece_rows_is_a_count_of_at_least_one(tmp_path: Path, capsys, value: str) -> None:
    with pytest.raises(SystemExit) as exc:
        main(settle(tmp_path, "--out", str(tmp_path / "out"), f"--piece-rows={value}"))
    assert exc.value.code == 2
    assert f"argument --piece-rows: {value!r} is not a whole number of at least 1" in capsys.readouterr().err


@pytest.mark.parametrize("engine", ["local", "columnar"])
def test_a_session_ending_at_the_end_of_year_9999_east_of_utc_is_out_of_month(
    tmp_path: Path, capsys, engine: str
) -> None:
    """9999-12-31T23:59:59Z is year 10000 in Amsterdam, past Python's dates: the CDR is out of the
    month (its end shown in UTC), not a crash (exit 70) that stops the whole month."""
    late = dict(cdr("Y9999"), end_date_time="9999-12-31T23:59:59Z")
    src, tariffs, contracts = write_month(tmp_path, [cdr("A1"), late])
    argv = ["settle", "--cdrs", str(src), "--tariffs", str(tariffs), "--contracts", str(contracts)]
    out = tmp_path / "out"
    assert (
        main([*argv, "--month", MONTH, "--tz", "Europe/Amsterdam", "--engine", engine, "--out", str(out)])
        == 0
    )
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["counts"]["out_of_month"] == 1 and manifest["counts"]["settled"] == 1
    found = [json.loads(x) for x in (out / "findings.ndjson").read_text().splitlines()]
    [finding] = [f for f in found if f["cdr_id"] == "Y9999" and f["code"] == "OUT_OF_MONTH"]
    assert "9999-12-31T23:59:59+00:00" in finding["message"]


@pytest.mark.parametrize("command", ["price", "reconcile", "settle"])
def test_a_file_given_twice_is_refused_before_any_work(tmp_path: Path, capsys, command: str) -> None:
    """A file named itself and through its folder would be read twice (every CDR a duplicate of
    itself): one sentence, exit 2, nothing written."""
    src, tariffs, _contracts = write_month(tmp_path, [cdr("A1")])
    folder = tmp_path / "in"
    folder.mkdir()
    src = src.rename(folder / src.name)
    out = tmp_path / ("out" if command == "settle" else "o.ndjson")
    head = ["settle", "--month", MONTH, "--cdrs"] if command == "settle" else [command, "--out", str(out)]
    tail = ["--out", str(out)] if command == "settle" else []
    assert main([*head, str(folder), str(src), "--tariffs", str(tariffs), *tail]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert err == [
        f"roamledger: error: {src} is given twice (also through {folder}): its records would be read "
        "twice. Hint: name each file once"
    ]
    assert not out.exists()


def test_a_refused_path_says_what_to_check() -> None:
    """Permission refused on a path that is not one of the run's hidden files (an immutable
    --out folder, an unreadable input): the path and what to check, in one sentence."""
    for code in (errno.EPERM, errno.EACCES):
        msg = os_error_message(OSError(code, os.strerror(code), "/data/ro/sub"))
        assert msg == (
            f"{os.strerror(code)}: /data/ro/sub. Hint: check its permissions (and its folder's, for an "
            "output); or choose another --out"
        )
    assert os_error_message(OSError(errno.ENOENT, "No such file or directory", "x")) == (
        "No such file or directory: x"
    )


@pytest.mark.parametrize(
    ("encoding", "kind"),
    [
        ("utf-16", "UTF-16"),
        ("utf-16-be", "UTF-16"),
        ("utf-32", "UTF-32"),
        ("utf-16-le", "UTF-16"),
        ("utf-32-be", "UTF-32"),
    ],
)
def test_a_file_in_utf16_or_utf32_is_refused_by_name(
    tmp_path: Path, capsys, encoding: str, kind: str
) -> None:
    """A UTF-16 file was half-read as UTF-8 (one line priced, the others rejected, a phantom
    record of its last byte): its byte order mark, or without one (utf-16-le, utf-32-be here) the
    NUL bytes of its first character, name the encoding and how to convert it."""
    src, tariffs, _ = write_month(tmp_path, [cdr("A1"), cdr("A2", day=6)])
    wide = tmp_path / "wide.ndjson"
    text = src.read_text()
    wide.write_bytes(("\ufeff" if encoding == "utf-16-be" else "").encode(encoding) + text.encode(encoding))
    out = tmp_path / "o.ndjson"
    assert main(["price", "--tariffs", str(tariffs), "--out", str(out), str(wide)]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert err == [
        f"roamledger: error: {wide}: the file is {kind} text; OCPI JSON is UTF-8. Hint: convert it first, "
        f"e.g. iconv -f {kind} -t UTF-8 {wide} > {tmp_path / 'wide.utf8.ndjson'}"
    ]
    assert not out.exists()


def test_a_failed_run_is_no_paid_month_for_history(tmp_path: Path, capsys) -> None:
    """A failed settle run (nothing read) written as a month's folder is not a paid month: as
    --history it is refused (it made the next month pay that month's CDRs as late lines)."""
    empty = tmp_path / "empty.ndjson"
    empty.write_text("")
    _src, tariffs, _contracts = write_month(tmp_path, [cdr("A1")])
    sept = tmp_path / "runs" / "2026-09"
    argv = [
        "settle",
        "--cdrs",
        str(empty),
        "--tariffs",
        str(tariffs),
        "--month",
        "2026-09",
        "--out",
        str(sept),
    ]
    assert main(argv) == 2
    assert (sept / "manifest.json").exists()
    capsys.readouterr()
    assert main(settle(tmp_path, "--out", str(tmp_path / "oct"), "--history", str(sept))) == 2
    err = capsys.readouterr().err.strip().splitlines()[-1]
    assert (
        err.startswith(f"roamledger: error: --history {sept}: holds no settle run") and "did not fail" in err
    )


def test_a_file_given_twice_through_a_hard_link_is_refused(tmp_path: Path, capsys) -> None:
    src, _tariffs, _contracts = write_month(tmp_path, [cdr("A1")])
    folder = tmp_path / "in"
    folder.mkdir()
    os.link(src, folder / "same.ndjson")
    assert main(settle(tmp_path, "--out", str(tmp_path / "out"), "--cdrs", str(folder))) == 2
    assert "is given twice (also through" in capsys.readouterr().err


def test_a_month_where_every_cdr_is_excluded_is_a_failed_run(tmp_path: Path, capsys) -> None:
    """--contracts forgotten for 2.1.1 CDRs (every party unknown, every CDR excluded from every
    statement): no statement, so a failed run (exit 2; it exited 0 and replaced an earlier good run, which a
    failed run keeps: test_settle.py); into an empty --out it is written there."""
    src = tmp_path / "c.json"
    src.write_text(
        (Path(__file__).parent.parent / "fixtures/spec/examples/2.1.1/cdr_example.json").read_text()
    )
    out = tmp_path / "out"
    out.mkdir()
    assert main(["settle", "--cdrs", str(src), "--month", "2015-06", "--out", str(out)]) == 2
    err = capsys.readouterr().err.strip().splitlines()[-1]
    assert err == (
        f"roamledger: error: no statement for 2015-06: its 1 CDRs are all excluded (the reasons are in "
        f"{out / 'findings.ndjson'}). Hint: check --contracts (the parties) and --tariffs"
    )
    good = json.loads((out / "manifest.json").read_text())
    assert good["counts"]["excluded"] == 1 and good["statements"] == []


@pytest.mark.parametrize("command", ["price", "reconcile", "settle"])
@pytest.mark.parametrize("damage", ["cut short", "bytes zeroed"])
def test_a_damaged_parquet_input_is_an_input_error_naming_it(
    tmp_path: Path, capsys, command: str, damage: str
) -> None:
    """A Parquet file cut short was an internal error (exit 70); one with bytes zeroed mid-file said
    "ZSTD decompression failed" without naming a file: both an input error naming it (exit 2)."""
    good = tmp_path / "x.parquet"
    gen = ["generate", "--cdrs", "300", "--seed", "5", "--quiet", "--out", str(good)]
    assert main([*gen, "--tariffs-out", str(tmp_path / "t")]) == 0
    data = bytearray(good.read_bytes())
    bad = tmp_path / "bad.parquet"
    if damage == "cut short":
        bad.write_bytes(bytes(data[:500]))
    else:
        n = len(data)
        data[n // 3 : n // 3 + 4000] = bytes(4000)
        bad.write_bytes(bytes(data))
    out = tmp_path / ("out" if command == "settle" else "o.ndjson")
    if command == "settle":
        argv = [
            "settle",
            "--cdrs",
            str(bad),
            "--tariffs",
            str(tmp_path / "t"),
            "--month",
            "2026-10",
            "--out",
            str(out),
        ]
    else:
        argv = [command, "--tariffs", str(tmp_path / "t"), "--out", str(out), str(bad)]
    assert main(argv) == 2
    err = capsys.readouterr().err.strip().splitlines()[-1]
    assert err.startswith(f"roamledger: error: {bad}: not a readable Parquet file (")
    assert err.endswith("Hint: it may be cut short or damaged; write it again")
    assert not out.exists()
