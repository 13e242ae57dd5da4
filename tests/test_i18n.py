"""Localized statements (issue 10, item 7): gettext catalogs for fr, de and nl hold every text of
the statement templates and every data text the page translates (fee labels, VAT sources,
treatments, dispute reasons, the amount-due basis), with the same %(name)s placeholders; a French
page has no English label left."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from babel.messages.pofile import read_po
from test_settle import cdr, run_settle, write_month

from settlement.render import LATE_NOTE, LOCALE_DIR, STATUS_WORDS, VAT_SOURCE, translations, vat_note_text
from settlement.rules import CONFLICTING_DUPLICATE, DISPUTE_WORDS
from settlement.statement import ROUNDING_RULE

TEMPLATES = Path(__file__).resolve().parent.parent / "settlement" / "templates"
DATA_TEXTS = [
    "Roaming fee per session",
    "Roaming fee (percentage)",
    "Hub fee per session",
    *VAT_SOURCE.values(),
    "excluded",
    "included",
    "incl. VAT",
    "excl. VAT (net amounts only)",
    "overcharged beyond tolerance",
    "undercharged beyond tolerance",
    CONFLICTING_DUPLICATE,
    *DISPUTE_WORDS.values(),
    "reported amounts",
    "recomputed amounts",
    "disputed lines excluded",
    "disputed lines included",
    "credit of %(id)s",
    "%(sessions)s − %(credited)s credited",
    "disputed: %(reason)s",
    "could not be recomputed: %(codes)s",
    LATE_NOTE,
    *STATUS_WORDS,
]


def template_msgids() -> set[str]:
    out: set[str] = set()
    for path in TEMPLATES.glob("*.j2"):
        out |= set(re.findall(r'(?<!n)_\("((?:[^"\\]|\\.)*)"', path.read_text()))
    return out


def plural_msgids() -> set[tuple[str, str]]:
    """(singular, plural) of every ngettext in the templates and in settlement/render.py."""
    text = "".join(p.read_text() for p in TEMPLATES.glob("*.j2"))
    pairs = set(re.findall(r'ngettext\(\s*"((?:[^"\\]|\\.)*)",\s*"((?:[^"\\]|\\.)*)"', text))
    render = (TEMPLATES.parent / "render.py").read_text()
    for call in re.findall(r"ngettext\(\s*((?:\"[^\"]*\"\s*)+),\s*((?:\"[^\"]*\"\s*)+),", render):
        pairs.add(tuple("".join(re.findall(r'"([^"]*)"', part)) for part in call))  # type: ignore[arg-type]
    return pairs


@pytest.mark.parametrize("language", ["fr", "de", "nl"])
def test_every_text_has_a_translation(language: str) -> None:
    with open(LOCALE_DIR / language / "LC_MESSAGES" / "messages.po", "rb") as fh:
        catalog = read_po(fh, locale=language)
    wanted = template_msgids() | set(DATA_TEXTS)
    assert len(wanted) > 60
    assert ROUNDING_RULE in next(m for m in wanted if m.startswith("Rounding:"))
    for msgid in sorted(wanted):
        msg = catalog.get(msgid)
        assert msg is not None and msg.string, (language, msgid)
        assert sorted(re.findall(r"%\(\w+\)s", msg.string)) == sorted(re.findall(r"%\(\w+\)s", msgid)), msgid


@pytest.mark.parametrize("language", ["fr", "de", "nl"])
def test_every_count_text_has_its_plural_forms(language: str) -> None:
    with open(LOCALE_DIR / language / "LC_MESSAGES" / "messages.po", "rb") as fh:
        catalog = read_po(fh, locale=language)
    pairs = plural_msgids()
    assert len(pairs) == 6
    for singular, plural in sorted(pairs):
        msg = catalog.get(singular)
        assert msg is not None and msg.id == (singular, plural), (language, singular)
        assert len(msg.string) == catalog.num_plurals and all(msg.string), (language, singular)
        for form in msg.string:
            assert sorted(re.findall(r"%\(\w+\)s", form)) == sorted(re.findall(r"%\(\w+\)s", plural))


@pytest.mark.parametrize(
    ("language", "one", "two"),
    [
        ("en", "1 line is an OCPI 2.1.1 CDR without VAT", "2 lines are OCPI 2.1.1 CDRs without VAT"),
        ("de", "1 Position ist ein OCPI-2.1.1-CDR ohne USt.", "2 Positionen sind OCPI-2.1.1-CDRs ohne USt."),
        ("fr", "1 ligne est un CDR OCPI 2.1.1 sans TVA", "2 lignes sont des CDR OCPI 2.1.1 sans TVA"),
        ("nl", "1 regel is een OCPI 2.1.1-CDR zonder btw", "2 regels zijn OCPI 2.1.1-CDR's zonder btw"),
    ],
)
def test_the_vat_sentence_counts_lines_in_the_page_language(language: str, one: str, two: str) -> None:
    tr = translations(language)

    def gettext(msgid: str, **values: object) -> str:
        return tr.gettext(msgid) % values

    def ngettext(singular: str, plural: str, count: int, /, **values: object) -> str:
        return tr.ngettext(singular, plural, count) % values

    for n, wanted in ((1, one), (2, two)):
        totals = {"vat_unknown_lines": n, "vat_total": None, "vat_by_rate": []}
        assert wanted in vat_note_text(totals, str, gettext, ngettext)


def test_one_line_is_singular_on_the_page(tmp_path: Path) -> None:
    src, tariffs, contracts = write_month(tmp_path, [cdr("A1")])
    for loc, wanted in (("en_GB", "Total, 1 line<"), ("de_DE", "Summe, 1 Position<")):
        assert run_settle(tmp_path, src, tariffs, contracts, tmp_path / loc, "--locale", loc) == 0
        page = (tmp_path / loc / "NL-CPO__DE-MSP__EUR" / "statement.html").read_text()
        assert wanted in page and "1 lines" not in page and "1 Positionen" not in page


def test_a_french_statement_has_no_english_label(tmp_path: Path) -> None:
    src, tariffs, contracts = write_month(tmp_path, [cdr("A1"), cdr("A2", day=6, reported="9.99")])
    out = {}
    for loc in ("en_GB", "fr_FR"):
        assert run_settle(tmp_path, src, tariffs, contracts, tmp_path / loc, "--locale", loc) == 0
        out[loc] = (tmp_path / loc / "NL-CPO__DE-MSP__EUR" / "statement.html").read_text()
    assert "Amount due" in out["en_GB"] and "Montant dû" not in out["en_GB"]
    fr = out["fr_FR"]
    assert "Montant dû" in fr and "Frais d'itinérance par session" in fr
    assert "surfacturé au-delà de la tolérance" in fr
    for english in ("Amount due", "Summary", "Disputed lines", "Contract fees", "VAT by rate", "kWh per day"):
        assert english not in fr, english


def test_reasons_and_notes_are_translated(tmp_path: Path) -> None:
    unknown = cdr("A3", day=7)
    unknown["charging_periods"][0]["tariff_id"] = "NO-SUCH-TARIFF"
    src, tariffs, contracts = write_month(tmp_path, [cdr("A1"), cdr("A2", day=6, reported="9.99"), unknown])
    assert run_settle(tmp_path, src, tariffs, contracts, tmp_path / "fr", "--locale", "fr_FR") == 0
    fr = (tmp_path / "fr" / "NL-CPO__DE-MSP__EUR" / "statement.html").read_text()
    assert "recalcul impossible : TARIFF_NOT_FOUND" in fr and "could not be recomputed" not in fr
    assert run_settle(tmp_path, src, tariffs, contracts, tmp_path / "en", "--locale", "en_GB") == 0
    en = (tmp_path / "en" / "NL-CPO__DE-MSP__EUR" / "statement.html").read_text()
    assert "could not be recomputed: TARIFF_NOT_FOUND" in en
