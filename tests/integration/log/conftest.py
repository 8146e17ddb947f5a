"""The backends of the event-log contract: PostgreSQL and the Pub/Sub emulator, from the fixtures the stores' and
the Pub/Sub suites already define (each test gets a schema, or a topic, of its own)."""

from tests.integration.pubsub.conftest import pubsub_emulator
from tests.integration.stores.conftest import postgres_server, postgres_url

__all__ = ["postgres_server", "postgres_url", "pubsub_emulator"]
