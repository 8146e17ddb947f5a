"""AES-GCM encryption of the registered PII properties, with a per-customer key.

The log's wrapper (:class:`~data.privacy.encrypting_log.EncryptingLog`) calls :meth:`FieldCodec.protect_events`
on append (after validation, before the backend stores or publishes the events) and :meth:`FieldCodec.reveal_event`
on read. A token is bound to its customer, event type and field (the AEAD's
associated data), so it cannot be moved to another customer's event. Keys are cached per process; the cache is
dropped when the key store records a new erasure, so an erased customer stops decrypting in every process.
"""

from __future__ import annotations

import base64
import os
import threading
from collections.abc import Iterable, Sequence
from typing import Any, Protocol, TypeVar

import orjson
from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from data.events import EventBase
from data.privacy.keystore import PiiKeyStore, open_key_store
from data.privacy.registry import ERASED, PII_EVENT_TYPES, TOKEN_PREFIX, pii_fields
from data.settings import get_settings

_TOKEN_MARK = '"' + TOKEN_PREFIX

R = TypeVar("R", bound="LogRow")


class LogRow(Protocol):
    """A row read from a log (:class:`~data.log.base.StoredEvent`, :class:`~data.log.base.ReplayEvent`)."""

    @property
    def event_type(self) -> str: ...

    @property
    def customer_id(self) -> str: ...

    @property
    def properties_json(self) -> str | None: ...

    def _replace(self: R, **changes: Any) -> R: ...


def _aad(customer_id: str, event_type: str, field: str) -> bytes:
    return f"{customer_id}\x1f{event_type}\x1f{field}".encode()


def encrypt_value(key: bytes, value: str, aad: bytes) -> str:
    nonce = os.urandom(12)
    sealed = AESGCM(key).encrypt(nonce, value.encode("utf-8"), aad)
    return TOKEN_PREFIX + base64.urlsafe_b64encode(nonce + sealed).decode("ascii")


def decrypt_value(key: bytes, token: str, aad: bytes) -> str:
    blob = base64.urlsafe_b64decode(token[len(TOKEN_PREFIX):])
    return AESGCM(key).decrypt(blob[:12], blob[12:], aad).decode("utf-8")


def is_token(value: Any) -> bool:
    return isinstance(value, str) and value.startswith(TOKEN_PREFIX)


class FieldCodec:
    """Encrypts and decrypts the PII properties of events (see the module docstring).

    :param keys: the key store.
    :param encrypt: False stores new PII as given (reads still decrypt what is encrypted).
    """

    def __init__(self, keys: PiiKeyStore, encrypt: bool = True) -> None:
        self.keys = keys
        self.encrypt = encrypt
        self._cache: dict[str, bytes | None] = {}
        self._version = -1
        self._generation = -1
        self._lock = threading.Lock()

    # -- keys -------------------------------------------------------------------------------------------

    def _refresh(self) -> None:
        version = self.keys.data_version()
        if version != self._version:
            self._version = version
            generation = self.keys.erased_generation()
            if generation != self._generation:
                self._generation = generation
                self._cache.clear()

    def _keys_for(self, customer_ids: Iterable[str], create: bool) -> dict[str, bytes | None]:
        with self._lock:
            self._refresh()
            wanted = set(customer_ids)
            missing = [c for c in wanted if c not in self._cache or (create and self._cache[c] is None)]
            if missing:
                self._cache.update(self.keys.keys(missing, create=create))
            return {c: self._cache.get(c) for c in wanted}

    # -- append -----------------------------------------------------------------------------------------

    def protect_events(self, events: Sequence[EventBase]) -> list[EventBase]:
        """``events`` with the PII values of those whose type carries any encrypted (copies of those; the others
        as they are). An erased customer's new PII is not stored at all (null)."""
        todo = [i for i, e in enumerate(events) if e.event_type in PII_EVENT_TYPES]
        props = [{f: getattr(events[i].properties, f) for f in pii_fields(events[i].event_type)} for i in todo]
        self.protect([events[i] for i in todo], props)
        out = list(events)
        for i, values in zip(todo, props, strict=True):
            event = events[i]
            out[i] = event.model_copy(update={"properties": event.properties.model_copy(update=values)})
        return out

    def protect(self, events: Sequence[Any], props: list[dict[str, Any]]) -> None:
        """Encrypt, in place, the PII values of ``props[i]`` (the stored properties of ``events[i]``).
        An erased customer's new PII is not stored at all (null)."""
        todo = [i for i, e in enumerate(events) if e.event_type in PII_EVENT_TYPES
                and any(props[i].get(f) for f in pii_fields(e.event_type))]
        if not todo:
            return
        keys = self._keys_for((events[i].customer_id for i in todo), create=self.encrypt)
        for i in todo:
            self._protect_one(events[i], props[i], keys.get(events[i].customer_id))

    def _protect_one(self, event: Any, p: dict[str, Any], key: bytes | None) -> None:
        if key is None and not self.encrypt and not self.keys.is_erased(event.customer_id):
            return  # encryption off and no key: stored as given
        for field in pii_fields(event.event_type):
            value = p.get(field)
            if not value:
                continue
            if key is None:
                p[field] = None
                continue
            aad = _aad(event.customer_id, event.event_type, field)
            if isinstance(value, list):
                p[field] = [v if is_token(v) else encrypt_value(key, str(v), aad) for v in value]
            elif not is_token(value):
                p[field] = encrypt_value(key, str(value), aad)

    # -- read -------------------------------------------------------------------------------------------

    def reveal(self, event_type: str, customer_id: str, props: dict[str, Any], erased: Any = None) -> dict[str, Any]:
        """``props`` with its tokens decrypted; a token whose key is gone reads as ``erased``."""
        key = self._keys_for((customer_id,), create=False).get(customer_id)
        out = dict(props)
        for field in pii_fields(event_type):
            value = out.get(field)
            aad = _aad(customer_id, event_type, field)
            if isinstance(value, list):
                revealed = [self._open(key, v, aad, erased) for v in value]
                out[field] = [v for v in revealed if v is not None]
            elif is_token(value):
                out[field] = self._open(key, value, aad, erased)
        return out

    @staticmethod
    def _open(key: bytes | None, value: Any, aad: bytes, erased: Any) -> Any:
        if not is_token(value):
            return value
        if key is None:
            return erased
        try:
            return decrypt_value(key, value, aad)
        except (InvalidTag, ValueError):
            return erased

    def reveal_json(self, event_type: str, customer_id: str, properties_json: str | None) -> str | None:
        """The stored properties JSON with its tokens decrypted (unchanged when it holds none)."""
        if properties_json is None or event_type not in PII_EVENT_TYPES or _TOKEN_MARK not in properties_json:
            return properties_json
        return orjson.dumps(self.reveal(event_type, customer_id, orjson.loads(properties_json))).decode()

    def reveal_event(self, row: R) -> R:
        """A row read from the log with its properties decrypted (the row itself when it holds no token)."""
        revealed = self.reveal_json(row.event_type, row.customer_id, row.properties_json)
        return row if revealed is row.properties_json else row._replace(properties_json=revealed)

    def reveal_envelope(self, raw: dict[str, Any]) -> dict[str, Any]:
        """An event as JSON data (a message body) with its tokens decrypted; left as it is when its shape is wrong
        (validation then says why)."""
        event_type, customer_id, properties = raw.get("event_type"), raw.get("customer_id"), raw.get("properties")
        if event_type not in PII_EVENT_TYPES or not isinstance(customer_id, str) or not isinstance(properties, dict):
            return raw
        return {**raw, "properties": self.reveal(event_type, customer_id, properties)}


def holds_token(properties_json: str | None) -> bool:
    """Whether stored properties JSON holds an encrypted value (a cheap substring test)."""
    return properties_json is not None and _TOKEN_MARK in properties_json


__all__ = ["ERASED", "FieldCodec", "codec_for_log", "decrypt_value", "encrypt_value", "holds_token", "is_token"]


def codec_for_log(log_url: str) -> FieldCodec:
    """The codec of a log, with the key store and switch from the settings (``AME_KEY_STORE``,
    ``AME_PRIVACY_ENCRYPT``)."""
    settings = get_settings()
    return FieldCodec(open_key_store(log_url, settings.key_store), encrypt=settings.privacy_encrypt)
