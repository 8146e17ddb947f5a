"""``task_created`` events as Salesforce Tasks: the fields of the Task, keyed by the event id (an External Id field)."""

from __future__ import annotations

from typing import Any

import orjson

from data.crm.salesforce import SalesforceClient, UpsertResult
from data.log.base import StoredEvent

TASK_EXTERNAL_ID = "AME_Event_Id__c"
"""The Task's External Id field (unique): the ``task_created`` event id, so a replayed sync updates, never duplicates."""
CUSTOMER_FIELD = "AME_Customer_Id__c"
"""The custom field that carries the engine's customer id on Tasks, Leads and Opportunities."""
PRIORITIES = {"low": "Low", "normal": "Normal", "high": "High", "urgent": "High"}


def task_fields(event: StoredEvent) -> dict[str, Any]:
    """The Task's fields for one ``task_created`` event (the external id goes in the URL, not the body)."""
    p = orjson.loads(event.properties_json)
    reason = p.get("reason") or p["task_type"]
    fields: dict[str, Any] = {
        "Subject": f"{p['task_type'].replace('_', ' ').capitalize()}: {reason}"[:255],
        "Status": "Not Started",
        "Priority": PRIORITIES[p.get("priority") or "normal"],
        "Description": f"{reason}\nqueue: {p.get('queue') or 'sales'}\nevent: {event.event_id}",
        CUSTOMER_FIELD: event.customer_id,
    }
    if p.get("due_at"):
        fields["ActivityDate"] = str(p["due_at"])[:10]
    return fields


def push_task(client: SalesforceClient, event: StoredEvent) -> UpsertResult:
    """Create (or, replayed, update) the Salesforce Task of one ``task_created`` event."""
    return client.upsert("Task", TASK_EXTERNAL_ID, event.event_id, task_fields(event))
