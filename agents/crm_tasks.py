"""The CRM task agent: every ``task_created`` becomes a Salesforce Task within seconds (an event-triggered sync).

It consumes ``task_created`` like any agent (sharded by customer, committed positions), upserts the Task keyed by
the event id (so a replayed batch updates the same Task instead of creating another) and appends
``crm_task_synced`` with the Task's id. When Salesforce cannot be reached the batch fails and the runtime retries it
with backoff from the last commit: no task is lost.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import ClassVar

from agents.runtime import Agent, StateView
from data.crm.salesforce import SalesforceClient, SalesforceConfig
from data.crm.tasks import push_task
from data.events import CrmTaskSynced, EventBase, derive_event_id
from data.log.base import StoredEvent


class CrmTaskAgent(Agent):
    """Pushes sales tasks to Salesforce.

    :param config: the org and connected app; None reads ``AME_SALESFORCE_*`` where the agent runs, so the secret
        never travels in the actor's arguments (unset, each batch fails with the names of the missing settings,
        shown as the shard's last error, and is retried).
    """

    name: ClassVar[str] = "crm_tasks"
    event_types: ClassVar[frozenset[str]] = frozenset({"task_created"})

    def __init__(self, config: SalesforceConfig | None = None) -> None:
        self.config = config
        self._client: SalesforceClient | None = None  # made in the process that runs the agent (its session is its own)

    def __getstate__(self) -> dict[str, object]:
        return {"config": self.config, "_client": None}

    @property
    def client(self) -> SalesforceClient:
        if self._client is None:
            self._client = SalesforceClient(self.config or SalesforceConfig.from_settings())
        return self._client

    def decide(self, batch: Sequence[StoredEvent], state: StateView) -> list[EventBase]:
        out: list[EventBase] = []
        for event in batch:
            result = push_task(self.client, event)
            out.append(CrmTaskSynced(
                event_id=derive_event_id(event.event_id, self.name, "synced", at=event.occurred_at),
                customer_id=event.customer_id, occurred_at=event.occurred_at, source=f"agent:{self.name}",
                causation_id=event.event_id, properties={"record_id": result.record_id, "created": result.created},
            ))
        return out
