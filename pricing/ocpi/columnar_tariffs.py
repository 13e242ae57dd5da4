"""Tariffs embedded in CDRs (``"tariffs": [...]``) for the columnar reader.

The per-record parser validates every embedded tariff (in the CDR's version) and, when no
tariffs are given, prices the CDR with its own embedded ones only
(:func:`pricing.sessions.select_tariffs`). The columnar path prices a whole file with one tariff
set, so a row with embedded tariffs stays columnar only where that gives the same answer:

* tariffs given (``--tariffs``): the embedded ones only have to parse without a finding;
* none given: the file's embedded tariffs become the set, one per id, and a row qualifies when
  each of its tariffs is the first one seen with that id (same content), and every charging period
  names one of the row's own tariffs (so the lookup never reaches another CDR's tariff). A 2.1.1
  row's periods name no tariff: the first of its connectors' ``tariff_id``s (document order) that
  is one of its own tariffs prices it (:func:`pricing.sessions.select_tariffs`); a 2.1.1 row whose
  connectors name none of them (the parser then takes "the only one that fits") and a row with no
  tariff at all (the parser's ``TARIFF_NOT_FOUND``) go per record.

Each distinct tariff text is parsed once (the cache key is its canonical JSON and version).
"""

from __future__ import annotations

import json
from typing import Any

from pricing.errors import RoamledgerError
from pricing.model import Tariff
from pricing.ocpi import parse_tariff
from pricing.ocpi._common import distinct


class EmbeddedTariffs:
    """The embedded tariffs seen so far; ``given``: whether the caller prices with its own set."""

    def __init__(self, given: bool) -> None:
        self.given = given
        self._parsed: dict[tuple[str, str], Tariff | None] = {}
        self.by_id: dict[str, tuple[tuple[str, str], Tariff]] = {}

    def tariffs(self) -> list[Tariff]:
        """One tariff per id, in the order first seen (the set the columnar CDRs are priced with)."""
        return [t for _key, t in self.by_id.values()]

    def _parse(self, obj: Any, version: str) -> tuple[tuple[str, str], Tariff | None]:
        key = (version, json.dumps(obj, sort_keys=True, default=str, separators=(",", ":")))
        if key not in self._parsed:
            try:
                tariff, findings = parse_tariff(obj, version)
            except RoamledgerError:
                tariff, findings = None, []
            self._parsed[key] = None if findings else tariff
        return key, self._parsed[key]

    def row(
        self, tariffs: Any, version: str, period_ids: list[str | None], connector_ids: tuple[str, ...] = ()
    ) -> tuple[str, str | None]:
        """(why a row with these embedded tariffs cannot go columnar, "" when it can; for a 2.1.1
        row priced with its own tariffs, the id of the one its connectors name, else None).
        ``connector_ids``: a 2.1.1 row's connector ``tariff_id``s, distinct, in document order."""
        if not isinstance(tariffs, list):
            return "embedded tariffs not a list", None
        parsed = [self._parse(t, version) for t in tariffs]
        if any(t is None for _k, t in parsed):
            return "embedded tariff with a finding", None
        if self.given:
            return "", None
        own = {t.id: key for key, t in parsed if t is not None}
        if len(own) != len(parsed):
            return "embedded tariffs repeat an id", None
        chosen = None
        if version == "2.1.1":
            chosen = next((i for i in connector_ids if i in own), None)
            if chosen is None:
                return "2.1.1 connectors name none of the CDR's own tariffs", None
            period_ids = [chosen]
        if any(i is None or i not in own for i in period_ids):
            return "a charging period names no embedded tariff", None
        for tid, key in own.items():
            seen = self.by_id.get(tid)
            if seen is not None and seen[0] != key:
                return "embedded tariff differs from an earlier one with the same id", None
        for key, t in parsed:
            if t is not None:
                self.by_id.setdefault(t.id, (key, t))
        return "", chosen


def connector_tariff_ids(obj: Any) -> tuple[str, ...]:
    """A decoded 2.1.1 CDR's ``location.evses[].connectors[].tariff_id``s, distinct, in document
    order (what ``Location.tariff_ids`` of :mod:`pricing.ocpi.v211` gives the parser); () for
    another shape (the columnar checks have seen the evses and connectors are objects)."""
    loc = obj.get("location") if isinstance(obj, dict) else None
    evses = loc.get("evses") if isinstance(loc, dict) else None
    ids: list[str | None] = []
    for evse in evses if isinstance(evses, list) else ():
        for conn in evse.get("connectors") or () if isinstance(evse, dict) else ():
            tid = conn.get("tariff_id") if isinstance(conn, dict) else None
            ids.append(tid if isinstance(tid, str) else None)
    return distinct(ids)
