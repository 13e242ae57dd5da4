"""Settings: defaults ← file (TOML or JSON) ← ROAMLEDGER_* variables; bad settings say what is wrong."""

from __future__ import annotations

import pytest

from api.http.settings import load_settings
from pricing.errors import InputError
from pricing.policy import FlatFee


def test_defaults_file_and_environment(tmp_path):
    assert load_settings(env={}).max_body_bytes == 1_048_576
    f = tmp_path / "service.toml"
    f.write_text('[roamledger]\nport = 9000\ndefault_locale = "nl"\npolicy = ["flat_fee=once_per_session"]\n')
    s = load_settings(f, env={"ROAMLEDGER_PORT": "9100"})
    assert (s.port, s.default_locale) == (9100, "nl")
    assert s.pricing_policy().flat_fee is FlatFee.ONCE_PER_SESSION
    j = tmp_path / "service.json"
    j.write_text('{"workers": 2}')
    assert (
        load_settings(
            env={"ROAMLEDGER_SETTINGS": str(j), "ROAMLEDGER_POLICY": "flat_fee=once_per_session"}
        ).workers
        == 2
    )


@pytest.mark.parametrize(
    ("env", "words"),
    [
        ({"ROAMLEDGER_PORT": "eighty"}, "port"),
        ({"ROAMLEDGER_POLICY": "flat_fee=never"}, "has no value"),
        ({"ROAMLEDGER_SETTINGS": "/nonexistent/service.toml"}, "cannot read settings file"),
    ],
)
def test_bad_settings(env, words):
    with pytest.raises(InputError, match=words):
        load_settings(env=env)
