"""The cluster tests need both services: PostgreSQL (the shared state) and the Pub/Sub emulator (the log). Their
session fixtures are the ones the stores' and the Pub/Sub tests use (imported here, not redefined)."""

from tests.integration.pubsub.conftest import pubsub_emulator, pubsub_url  # noqa: F401 - fixtures
from tests.integration.stores.conftest import postgres_server, postgres_url  # noqa: F401 - fixtures
