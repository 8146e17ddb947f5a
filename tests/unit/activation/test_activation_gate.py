"""Who may be sent: the consent rule per channel, the destinations' default consent, and how the model's rows and
the destination's holdings split into sends, removals and erasures."""

from __future__ import annotations

from collections.abc import Collection

import pytest

from data.activation.config import SyncConfig
from data.activation.destinations.base import Record
from data.activation.diff import admit
from data.activation.gate import blocked, consent_allows


class DictGate:
    def __init__(self, erased: set[str], stated: dict[str, bool | None]) -> None:
        self.erased_, self.stated = erased, stated

    def erased(self, keys: Collection[str]) -> set[str]:
        return self.erased_ & set(keys)

    def consent(self, keys: Collection[str], channel: str) -> dict[str, bool | None]:
        return {k: self.stated[k] for k in keys if k in self.stated}


@pytest.mark.parametrize(("channel", "stated", "allowed"), [
    ("email", True, True), ("email", None, False), ("email", False, False),
    ("ad", True, True), ("ad", None, True), ("ad", False, False),
])
def test_email_needs_consent_given_and_ads_only_no_withdrawal(channel: str, stated: bool | None, allowed: bool) -> None:
    assert consent_allows(channel, stated) is allowed


def test_each_destination_has_its_default_consent_and_a_sync_may_override_it() -> None:
    def sync(destination: dict, **extra: object) -> SyncConfig:
        return SyncConfig.model_validate({"name": "s", "model": "m", "mapping": {"email": "email", "external_id": "id"},
                                          "destination": destination, **extra})

    assert sync({"type": "hubspot"}).consent_channel() == "email"
    assert sync({"type": "google_ads", "customer_id": "1234567890", "user_list_id": "1"}).consent_channel() == "ad"
    assert sync({"type": "webhook", "url": "http://x"}).consent_channel() is None
    assert sync({"type": "webhook", "url": "http://x"}, consent="sms").consent_channel() == "sms"
    assert sync({"type": "hubspot"}, consent="none").consent_channel() is None


def test_erased_and_unconsented_rows_are_withheld_and_removed_or_erased_where_held() -> None:
    gate = DictGate(erased={"e"}, stated={"ok": True, "no": False, "e": True})
    records = [Record(k, {"email": f"{k}@x"}) for k in ("ok", "no", "never", "e")]
    held = {"no": ("h1", {"email": "no@x"}), "e": ("h2", {"email": "e@x"}), "gone": ("h3", {"email": "gone@x"})}
    erased, no_consent = blocked(gate, {r.key for r in records} | held.keys(), "email")
    assert erased == {"e"} and no_consent == {"no", "never", "gone"}
    admission = admit(records, held, erased, no_consent)
    assert [r.key for r in admission.records] == ["ok"] and admission.withheld == 3
    assert [r.key for r in admission.removals] == ["no", "gone"] and admission.removals[0].fields == {"email": "no@x"}
    assert [r.key for r in admission.erasures] == ["e"] and admission.held == {}
    assert blocked(gate, ["ok", "no", "e"], None) == ({"e"}, set()), "no channel: only erasure counts"
