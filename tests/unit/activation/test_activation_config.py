"""Sync YAML validation: the example is valid, and every error names the sync, the field and the fix."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from data.activation.config import load_syncs, parse_syncs, validate_cron
from data.activation.errors import SyncConfigError

EXAMPLE = Path(__file__).resolve().parents[3] / "data" / "activation" / "syncs.example.yaml"


def sync(**overrides: Any) -> dict[str, Any]:
    base = {"name": "leads", "model": "marts_sales_lead_scores", "mapping": {"email": "email"},
            "destination": {"type": "hubspot"}}
    return {**base, **overrides}


def error_of(raw: Any) -> str:
    with pytest.raises(SyncConfigError) as info:
        parse_syncs(raw, source="syncs.yaml")
    return str(info.value)


def test_the_example_file_is_valid() -> None:
    syncs = load_syncs(EXAMPLE).syncs
    kinds = {s.destination.type for s in syncs}
    assert kinds == {"csv", "parquet", "salesforce", "hubspot", "braze", "google_ads", "webhook"}
    braze = next(s for s in syncs if s.destination.type == "braze")
    assert braze.effective_batch_size() == 75


def test_bad_cron_names_the_field_and_shows_an_example() -> None:
    message = error_of({"syncs": [sync(schedule="every hour")]})
    assert "syncs[0] (name 'leads').schedule" in message and "'0 * * * *'" in message
    assert "is not valid" in error_of({"syncs": [sync(schedule="61 * * * *")]})


def test_unknown_destination_field_and_type_are_named() -> None:
    message = error_of({"syncs": [sync(destination={"type": "hubspot", "tokn_env": "X"})]})
    assert "destination.tokn_env" in message and "extra_forbidden" in message
    message = error_of({"syncs": [sync(destination={"type": "mailchimp"})]})
    assert "destination" in message and "mailchimp" in message


def test_identity_field_of_the_destination_must_be_mapped() -> None:
    message = error_of({"syncs": [sync(destination={"type": "salesforce", "instance_url": "https://x.my.salesforce.com",
                                                    "external_id_field": "AME_Id__c"})]})
    assert "destination.external_id_field is 'AME_Id__c'" in message and "add `AME_Id__c: <model column>`" in message


def test_batch_size_mode_rate_limit_and_url_rules() -> None:
    assert "syncs[0] (name 'leads').mode" in error_of({"syncs": [sync(mode="replace")]})
    assert "rate_limit.requests_per_second" in error_of({"syncs": [sync(rate_limit={"requests_per_second": 0})]})
    assert "destination.max_batch_size" in error_of({"syncs": [sync(destination={"type": "braze",
                                                                                 "rest_endpoint": "https://b",
                                                                                 "max_batch_size": 100})]})
    assert "destination.url" in error_of({"syncs": [sync(destination={"type": "webhook", "url": "ftp://x"})]})


def test_sql_identifiers_and_unique_names() -> None:
    assert "syncs[0] (name 'leads').model" in error_of({"syncs": [sync(model="x; drop table y")]})
    assert "mapping" in error_of({"syncs": [sync(mapping={"email": "lower(email)"})]})
    assert "two syncs are named 'leads'" in error_of({"syncs": [sync(), sync()]})
    assert "syncs" in error_of({"syncs": []})


def test_secrets_are_env_names_not_values() -> None:
    assert "destination.token_env" in error_of({"syncs": [sync(destination={"type": "hubspot",
                                                                            "token_env": "pat-na1-abc"})]})


def test_missing_file_and_bad_yaml_say_what_to_do(tmp_path: Path) -> None:
    with pytest.raises(SyncConfigError, match=r"syncs\.example\.yaml"):
        load_syncs(tmp_path / "nope.yaml")
    bad = tmp_path / "bad.yaml"
    bad.write_text("syncs: [\n", encoding="utf-8")
    with pytest.raises(SyncConfigError, match="not valid YAML"):
        load_syncs(bad)


def test_validate_cron_accepts_common_forms() -> None:
    for expression in ("0 * * * *", "*/15 * * * *", "0 6 * * 1-5", "30 2 1 * *"):
        assert validate_cron(expression) == expression
