"""``roamledger generate``: a realistic, deterministic workload of OCPI CDRs and tariffs.

Same arguments → byte-identical files (numpy ``PCG64`` streams keyed by ``(seed, block, purpose)``;
no clock, no hash randomisation, no dict-order dependence).

What a month looks like
-----------------------
* **Parties.** Up to 5 CPOs (NL*ECO Amsterdam, DE*VLT Berlin, GB*PLG London/GBP, BE*WAT Brussels,
  FR*REC Paris; ``--cpos`` takes the first k) with locations in their own country, and up to 6
  eMSPs (DE*MSP, NL*TNM, FR*EMO, GB*DRV, BE*MOB, NL*ROM; ``--emsps``). Contract ids are eMAIDs
  (``NL-TNM-C01234567-8``); a 2.1.1 ``auth_id`` is the eMAID without separators, so its first five
  characters (country + provider) name the eMSP.
* **Tariffs** (one OCPI tariff JSON file per tariff and version in ``--tariffs-out``; ids
  ``<PARTY>-<AC|DC>-<211|221|230>`` so the versions never collide): AC = start FLAT + a
  time-of-day peak ENERGY window + off-peak ENERGY + PARKING_TIME that only applies once the
  session is older than ``min_duration`` (DE: also only 08:00–20:00, Monday–Saturday); DC =
  ENERGY with a ``min_kwh`` volume tier + TIME while ``min_power`` holds + an idle fee
  (PARKING_TIME after ``min_duration``). NL DC has ``max_price``, DE AC ``min_price``; VAT in
  2.2.1/2.3.0; 2.3.0 ``tax_included`` is ``NO`` except GB AC (``YES``, prices incl. 20 % VAT).
  Step sizes 0, 1, 60, 100 Wh, 300 and 900 s are mixed.
* **Sessions.** AC 3.7–22 kW with constant power; DC 50–150 kW tapering over 2–3 stages
  (MIN_POWER/MAX_POWER per period, 2.2.1/2.3.0). The CPO opens a new charging period at every instant where
  the tariff could switch for that phase (local clock times of the windows, local midnight for
  ``day_of_week``, the ``min_kwh`` crossing, the ``min_power`` crossing, the ``min_duration``
  crossing during parking) — except for ``--straddle-rate`` of the sessions, whose periods
  straddle a clock-time price change (those CPOs priced each period by its state at its start).
  Parking follows charging in ~40 % of AC and ~10 % of DC sessions. Starts follow a daily profile
  in local time over ``--month``; ~0.5 % are forced into the night of a DST change inside the
  month; ``--out-of-month-rate`` of the sessions start and end in the previous / next month.
* **Exact volumes.** Every instant is a whole multiple of 9 s in UTC (9 s = 0.0025 h), so every
  TIME / PARKING_TIME volume is exact at 4 decimals and equals the difference of the
  timestamps; ENERGY is whole Wh (kWh with 3 decimals).
* **Reported totals** are computed by the pricing kernel (default policy; straddling sessions with
  ``period_boundaries=start``) and rounded half-up to 2 decimals,
  as a CPO would (hence natural ROUNDING differences below 0.01). Overcharged CDRs
  (``--overcharge-rate``) were priced with a wrong tariff: parking step 3600 s and ENERGY +10 %.
* **Stream defects.** Credit CDRs (2.2.1/2.3.0 only; id + ``-C``, ``credit_reference_id``, money
  negated) — 25× likelier for overcharged CDRs, which are then always re-issued (id + ``-R``,
  correct totals); other credits are re-issued half of the time. Duplicates (``--duplicate-rate``):
  identical resends, and one in four a conflicting resend (same id, total_cost +0.10…2.00).
  ``--malformed K`` adds K broken records, rotating through: truncated JSON line (BAD_JSON),
  missing ``currency`` (MISSING_FIELD), negative ENERGY volume (NEGATIVE_VOLUME), unknown tariff
  id (TARIFF_NOT_FOUND), wrong currency (CURRENCY_MISMATCH), a CDR of another OCPI version in
  the stream (VERSION_MISMATCH). Malformed records are extra sessions: ``--cdrs`` counts the
  well-formed original sessions only. An unknown tariff id is put on a 2.2.1/2.3.0 CDR when
  those versions are generated (a 2.1.1 CDR names no CPO, so it would be TARIFF_AMBIGUOUS).
* **Side outputs.** ``--summary FILE`` (all counts, the expected reject codes),
  ``--labels FILE`` (one NDJSON row per special record: file, line, cdr_id, kind, labels such as
  ``overcharged``, ``straddling``, ``credit``, ``out_of_month_after``, ``malformed:<kind>`` with
  its ``expected_code``), ``--contracts-out FILE`` (a contracts file for ``roamledger settle``
  mapping every 2.1.1 location and contract prefix to its party).

Output by suffix
----------------
* ``.ndjson`` / ``.jsonl``: one nested OCPI CDR per line, one file per OCPI version: ``FILE``
  holds the first version of ``--versions``, each other version goes to the sibling
  ``<stem>.v<digits><suffix>`` (``cdrs.ndjson``, ``cdrs.v211.ndjson``, ``cdrs.v230.ndjson``).
  Written block by block (50,000 sessions), records sorted by send time within a block;
  ``--jobs J`` builds blocks in J processes (same bytes).
* ``.parquet``: the flat layout of :mod:`pricing.flat` (one row per charging period, all
  versions in one file, one row group per block). ``reported_total_*`` are computed by the
  kernel on the flat columns at any size (:func:`benchmarks.workload.reported.flat_reported`:
  the totals the NDJSON records report); ``--no-reported`` leaves them null. Malformed records
  that cannot exist in a typed table (truncated JSON, version mismatch) are replaced by the
  other kinds.

Modules: ``specs`` (parties and tariffs as data), ``tariffs`` (OCPI tariff JSON), ``config``,
``world``, ``sessions`` (sessions and charging periods per block), ``plan`` (the records of a
block), ``render`` (OCPI CDR JSON), ``jsontext`` (exact JSON numbers), ``reported`` (reported
totals by the kernel), ``sinks`` (NDJSON / flat Parquet writers, counts and labels), ``run`` and
``cli`` (``add_parser(subparsers)``, ``run(args)``).
"""
