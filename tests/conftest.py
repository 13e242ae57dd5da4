"""Shared test settings.

Hypothesis profiles: ``ci`` (default; bounded so the suite stays well under 10 minutes on 2 cores),
``dev`` (more examples) and ``thorough`` (>= 10,000 examples, run before resolving kernel work):
``HYPOTHESIS_PROFILE=thorough python -m pytest tests/property`` (``python -m``: the tests import each
other as a package from the repository root).
"""

from __future__ import annotations

import os
from pathlib import Path

from hypothesis import HealthCheck, settings

ROOT = Path(__file__).resolve().parent.parent

settings.register_profile(
    "ci", max_examples=200, deadline=None, derandomize=True, suppress_health_check=[HealthCheck.too_slow]
)
settings.register_profile(
    "dev", max_examples=1_000, deadline=None, suppress_health_check=[HealthCheck.too_slow]
)
settings.register_profile(
    "thorough", max_examples=10_000, deadline=None, suppress_health_check=list(HealthCheck)
)
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "ci"))
