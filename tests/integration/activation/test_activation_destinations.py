"""Each destination against a local stub of its API: request shapes, per-row errors, retries, rate limits."""

from __future__ import annotations

import hashlib
import hmac
import random
from pathlib import Path
from typing import Any

import pytest

from data.activation.config import SyncConfig
from data.activation.destinations.google_ads import sha256_hex
from data.activation.runner import run_sync
from data.activation.state import SyncState
from data.activation.transport import FakeClock
from tests.integration.activation.activation_stub import StubResponse, StubServer

LEADS = [
    {"customer_id": f"c{i}", "email": f"Lead.{i}@Example.com ", "first_name": f"F{i}", "score": i / 10}
    for i in range(5)
]


class ListSource:
    def __init__(self, rows: list[dict[str, Any]]) -> None:
        self.rows_ = rows

    def rows(self, sync: SyncConfig) -> list[dict[str, Any]]:
        return list(self.rows_)


def make_sync(destination: dict[str, Any], mapping: dict[str, str] | None = None, **extra: Any) -> SyncConfig:
    return SyncConfig.model_validate({
        "name": "t", "model": "marts_sales_lead_scores", "identity_key": "customer_id",
        "mapping": mapping or {"email": "email", "first_name": "first_name", "score": "score"},
        "retry": {"max_attempts": 4, "base_delay_s": 0.5, "max_delay_s": 8, "timeout_s": 5},
        "destination": destination, **extra,
    })


@pytest.fixture
def state(tmp_path: Path) -> SyncState:
    return SyncState(tmp_path / "state.db")


def run(sync: SyncConfig, state: SyncState, rows: list[dict[str, Any]] = LEADS, clock: FakeClock | None = None):
    return run_sync(sync, ListSource(rows), state, clock=clock or FakeClock(), rng=random.Random(0))


def test_webhook_batches_are_signed_and_per_row_errors_are_kept(stub: StubServer, state: SyncState) -> None:
    sync = make_sync({"type": "webhook", "url": stub.url + "/hook", "secret_env": "AME_WEBHOOK_SECRET"},
                     batch_size=2)
    stub.responder = lambda r: StubResponse(200, {"errors": [{"key": "c3", "message": "bad email"}]}
                                             if any(x["key"] == "c3" for x in r.json["records"]) else {})
    report = run(sync, state)
    assert [len(r.json["records"]) for r in stub.requests] == [2, 2, 1]
    first = stub.requests[0]
    assert first.json["operation"] == "upsert" and first.json["records"][0] == {
        "key": "c0", "fields": {"email": "Lead.0@Example.com ", "first_name": "F0", "score": 0.0}}
    expected = "sha256=" + hmac.new(b"s3cret", first.headers["x-ame-timestamp"].encode() + b"." + first.body,
                                    hashlib.sha256).hexdigest()
    assert first.headers["x-ame-signature"] == expected
    assert report.status == "partial" and report.succeeded == 4
    assert report.errors == [{"key": "c3", "operation": "upsert", "error": "bad email"}]
    stub.requests.clear()
    stub.responder = lambda r: StubResponse(200, {})
    again = run(sync, state)  # only the failed row is sent again
    assert [x["key"] for r in stub.requests for x in r.json["records"]] == ["c3"] and again.status == "ok"


def test_salesforce_collections_upsert_by_external_id(stub: StubServer, state: SyncState) -> None:
    sync = make_sync({"type": "salesforce", "instance_url": stub.url, "api_version": "v62.0", "sobject": "Lead",
                      "external_id_field": "AME_Id__c"},
                     mapping={"AME_Id__c": "customer_id", "Email": "email", "FirstName": "first_name"})

    def answer(r):
        return StubResponse(200, [
            {"success": False, "errors": [{"statusCode": "INVALID_EMAIL_ADDRESS", "message": "Email: invalid",
                                           "fields": ["Email"]}]} if rec["AME_Id__c"] == "c1"
            else {"id": "00Q" + rec["AME_Id__c"], "success": True, "errors": [], "created": True}
            for rec in r.json["records"]])

    stub.responder = answer
    report = run(sync, state)
    (req,) = stub.requests
    assert req.method == "PATCH" and req.path == "/services/data/v62.0/composite/sobjects/Lead/AME_Id__c"
    assert req.headers["authorization"] == "Bearer sf-token"
    assert req.json["allOrNone"] is False
    assert req.json["records"][0] == {"attributes": {"type": "Lead"}, "AME_Id__c": "c0",
                                      "Email": "Lead.0@Example.com ", "FirstName": "F0"}
    assert report.succeeded == 4 and report.errors[0]["key"] == "c1"
    assert "INVALID_EMAIL_ADDRESS" in report.errors[0]["error"] and "Email" in report.errors[0]["error"]


def test_salesforce_mirror_deletes_by_external_id(stub: StubServer, state: SyncState) -> None:
    sync = make_sync({"type": "salesforce", "instance_url": stub.url, "external_id_field": "AME_Id__c"},
                     mapping={"AME_Id__c": "customer_id", "Email": "email"}, mode="mirror")
    stub.responder = lambda r: StubResponse(200, [{"success": True, "errors": []} for _ in r.json["records"]])
    run(sync, state)
    stub.requests.clear()
    stub.responder = lambda r: StubResponse(404 if r.path.endswith("/c4") else 204, None)
    report = run(sync, state, LEADS[:3])  # c3 and c4 left the model
    assert sorted((r.method, r.path) for r in stub.requests) == [
        ("DELETE", "/services/data/v62.0/sobjects/Lead/AME_Id__c/c3"),
        ("DELETE", "/services/data/v62.0/sobjects/Lead/AME_Id__c/c4"),  # 404: already gone, counts as deleted
    ]
    assert report.deletes_sent == 2 and report.failed == 0 and state.held("t") == 3


def test_hubspot_batch_upsert_by_email_with_multi_status(stub: StubServer, state: SyncState) -> None:
    sync = make_sync({"type": "hubspot", "base_url": stub.url, "id_property": "email"})
    stub.responder = lambda r: StubResponse(207, {
        "status": "COMPLETE", "results": [{"id": "1", "properties": {"email": "lead.0@example.com"}}],
        "numErrors": 1,
        "errors": [{"status": "error", "category": "VALIDATION_ERROR", "message": "Property values were not valid",
                    "context": {"ids": ["Lead.2@Example.com "]}}]})
    report = run(sync, state)
    (req,) = stub.requests
    assert req.method == "POST" and req.path == "/crm/v3/objects/contacts/batch/upsert"
    assert req.headers["authorization"] == "Bearer hs-token"
    assert req.json["inputs"][0] == {"idProperty": "email", "id": "Lead.0@Example.com ",
                                     "properties": {"first_name": "F0", "score": 0.0}}
    assert [e["key"] for e in report.errors] == ["c2"] and "VALIDATION_ERROR" in report.errors[0]["error"]
    assert report.succeeded == 4


def test_braze_users_track_attributes_in_batches_of_75(stub: StubServer, state: SyncState) -> None:
    rows = [{"customer_id": f"u{i}", "email": f"u{i}@x.io", "first_name": "A", "score": 0.5} for i in range(160)]
    sync = make_sync({"type": "braze", "rest_endpoint": stub.url, "external_id_field": "external_id"},
                     mapping={"external_id": "customer_id", "churn": "score"}, batch_size=500)

    def answer(r):
        errors = [{"type": "'churn' is not valid", "input_array": "attributes", "index": 1}] if r.json[
            "attributes"][0]["external_id"] == "u0" else []
        return StubResponse(201, {"message": "success", "attributes_processed": 75, "errors": errors})

    stub.responder = answer
    report = run(sync, state, rows)
    assert [len(r.json["attributes"]) for r in stub.requests] == [75, 75, 10]
    assert stub.requests[0].path == "/users/track" and stub.requests[0].headers["authorization"] == "Bearer braze-key"
    assert stub.requests[0].json["attributes"][0] == {"external_id": "u0", "churn": 0.5}
    assert report.errors == [{"key": "u1", "operation": "upsert", "error": "'churn' is not valid"}]


def test_braze_fatal_message_fails_the_batch(stub: StubServer, state: SyncState) -> None:
    sync = make_sync({"type": "braze", "rest_endpoint": stub.url}, mapping={"external_id": "customer_id"})
    stub.responder = lambda r: StubResponse(400, {"message": "Valid data must be provided"})
    report = run(sync, state)
    assert report.status == "failed" and report.failed == 5 and state.held("t") == 0
    assert "HTTP 400" in report.errors[0]["error"]


def test_google_ads_customer_match_job_with_hashed_ids(stub: StubServer, state: SyncState) -> None:
    rows = [{"customer_id": "a", "email": "  Jane.Doe@Gmail.com", "phone": "(415) 555-0100"},
            {"customer_id": "b", "email": "not-an-email", "phone": None},
            {"customer_id": "c", "email": "c@example.org", "phone": "+44 20 7946 0958"}]
    sync = make_sync({"type": "google_ads", "base_url": stub.url, "customer_id": "1234567890",
                      "user_list_id": "42", "login_customer_id": "1112223333", "phone_field": "phone"},
                     mapping={"email": "email", "phone": "phone"}, mode="mirror")
    job = "customers/1234567890/offlineUserDataJobs/777"

    def answer(r):
        if r.path.endswith(":create"):
            return StubResponse(200, {"resourceName": job})
        if r.path.endswith(":addOperations"):
            return StubResponse(200, {"partialFailureError": {"code": 3, "message": "partial", "details": [{
                "@type": "type.googleapis.com/google.ads.googleads.v26.errors.GoogleAdsFailure",
                "errors": [{"message": "The identifier is not valid.", "location": {"fieldPathElements": [
                    {"fieldName": "operations", "index": 1}, {"fieldName": "create"}]}}]}]}})
        return StubResponse(200, {"name": "operations/1"})

    stub.responder = answer
    report = run(sync, state, rows)
    create, add, run_job = stub.requests
    assert create.path == "/v26/customers/1234567890/offlineUserDataJobs:create"
    assert create.json == {"job": {"type": "CUSTOMER_MATCH_USER_LIST", "customerMatchUserListMetadata": {
        "userList": "customers/1234567890/userLists/42",
        "consent": {"adUserData": "GRANTED", "adPersonalization": "GRANTED"}}}}
    assert create.headers["developer-token"] == "ga-dev" and create.headers["login-customer-id"] == "1112223333"
    assert add.path == f"/v26/{job}:addOperations" and add.json["enablePartialFailure"] is True
    assert add.json["operations"] == [
        {"create": {"userIdentifiers": [{"hashedEmail": sha256_hex("jane.doe@gmail.com")},
                                        {"hashedPhoneNumber": sha256_hex("+14155550100")}]}},
        {"create": {"userIdentifiers": [{"hashedEmail": sha256_hex("c@example.org")},
                                        {"hashedPhoneNumber": sha256_hex("+442079460958")}]}},
    ]
    assert run_job.path == f"/v26/{job}:run"
    assert {e["key"] for e in report.errors} == {"b", "c"}  # b: nothing to hash; c: refused by partial failure
    assert state.held("t") == 1
    stub.requests.clear()
    report = run(sync, state, rows[1:])  # mirror: "a" left -> remove operation; b and c are retried
    paths = [r.path.rsplit(":", 1)[-1] for r in stub.requests]
    assert paths == ["create", "addOperations", "addOperations", "run"]
    assert stub.requests[1].json["operations"] == [
        {"create": {"userIdentifiers": [{"hashedEmail": sha256_hex("c@example.org")},
                                        {"hashedPhoneNumber": sha256_hex("+442079460958")}]}}]
    assert stub.requests[2].json["operations"] == [
        {"remove": {"userIdentifiers": [{"hashedEmail": sha256_hex("jane.doe@gmail.com")},
                                        {"hashedPhoneNumber": sha256_hex("+14155550100")}]}}]
    assert report.deletes_sent == 1 and state.held("t") == 1  # "a" removed, "c" accepted this time (index 0)


def test_google_ads_job_not_run_means_nothing_committed(stub: StubServer, state: SyncState) -> None:
    sync = make_sync({"type": "google_ads", "base_url": stub.url, "customer_id": "1234567890", "user_list_id": "1"},
                     mapping={"email": "email"}, retry={"max_attempts": 1})
    stub.responder = lambda r: (StubResponse(200, {"resourceName": "customers/1234567890/offlineUserDataJobs/9"})
                                if r.path.endswith(":create") else StubResponse(500, {"error": "boom"})
                                if r.path.endswith(":run") else StubResponse(200, {}))
    report = run(sync, state)
    assert report.status == "failed" and report.failed == 5 and state.held("t") == 0
    assert "run not completed" in report.errors[0]["error"]


def test_retry_on_429_respects_retry_after_then_503_backs_off(stub: StubServer, state: SyncState) -> None:
    sync = make_sync({"type": "webhook", "url": stub.url + "/hook"})
    stub.queue = [StubResponse(429, {"error": "slow down"}, {"Retry-After": "7"}),
                  StubResponse(503, {"error": "unavailable"}), StubResponse(503, {})]
    clock = FakeClock()
    report = run(sync, state, clock=clock)
    assert len(stub.requests) == 4 and report.status == "ok" and report.succeeded == 5
    assert clock.sleeps[0] == 7.0  # Retry-After, not the backoff
    assert 0 <= clock.sleeps[1] <= 1.0 and 0 <= clock.sleeps[2] <= 2.0  # full jitter, base 0.5 * 2**attempt
    assert report.retries == 3 and report.throttled == 1


def test_retries_exhausted_mark_the_batch_failed_and_it_is_resent(stub: StubServer, state: SyncState) -> None:
    sync = make_sync({"type": "webhook", "url": stub.url + "/hook"}, batch_size=3)
    stub.queue = [StubResponse(503, {})] * 4  # the first batch's four attempts
    clock = FakeClock()
    report = run(sync, state, clock=clock)
    assert report.status == "partial" and report.failed == 3 and report.succeeded == 2
    assert "gave up after 4 attempts" in report.errors[0]["error"]
    assert len(clock.sleeps) == 3 and all(s <= 8 for s in clock.sleeps)
    stub.requests.clear()
    assert run(sync, state).succeeded == 3 and len(stub.requests) == 1


def test_rate_limit_spaces_requests(stub: StubServer, state: SyncState) -> None:
    rows = [{"customer_id": f"c{i}", "email": "e", "first_name": "f", "score": 1} for i in range(10)]
    sync = make_sync({"type": "webhook", "url": stub.url + "/hook"}, batch_size=1,
                     rate_limit={"requests_per_second": 4, "burst": 2})
    clock = FakeClock()
    report = run(sync, state, rows, clock=clock)
    assert len(stub.requests) == 10 and report.succeeded == 10
    assert clock.now == pytest.approx((10 - 2) / 4)  # burst of 2, then one every 0.25 s


def test_unauthorized_stops_the_run_and_names_the_fix(stub: StubServer, state: SyncState) -> None:
    sync = make_sync({"type": "hubspot", "base_url": stub.url}, batch_size=2)
    stub.responder = lambda r: StubResponse(401, {"message": "Authentication credentials not found"})
    report = run(sync, state)
    assert len(stub.requests) == 1 and report.failed == 5 and report.status == "failed"
    assert "*_env" in report.errors[0]["error"] and report.errors[-1]["error"].startswith("not attempted")


def test_missing_credential_is_a_fatal_error_naming_the_variable(stub: StubServer, state: SyncState,
                                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("AME_HUBSPOT_TOKEN")
    report = run(make_sync({"type": "hubspot", "base_url": stub.url}), state)
    assert report.status == "failed" and "AME_HUBSPOT_TOKEN" in (report.fatal or "") and not stub.requests
