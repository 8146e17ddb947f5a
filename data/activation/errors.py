"""The activation area's own errors."""

from __future__ import annotations


class ActivationError(RuntimeError):
    """Base of the activation errors."""


class SyncConfigError(ActivationError):
    """The sync configuration (YAML) is invalid; the message names the sync, the field and the rule."""


class DestinationError(ActivationError):
    """A destination refused a whole batch, or could not be reached after every retry.

    :param status: the last HTTP status, when there was one.
    :param retryable: whether the failure was transient (429/5xx, network) and retries ran out.
    """

    def __init__(self, message: str, status: int | None = None, retryable: bool = False) -> None:
        super().__init__(message)
        self.status = status
        self.retryable = retryable


class MissingSecret(ActivationError):
    """A destination needs a credential from an environment variable that is not set."""
