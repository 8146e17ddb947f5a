"""Sync configuration: which mart goes to which destination, how its columns map, how often, how fast.

A YAML file holds a list of syncs::

    syncs:
      - name: high_intent_leads_to_hubspot
        model: marts_sales_lead_scores
        identity_key: customer_id
        filter: "lead_tier = 'High'"
        mapping: {email: email, firstname: first_name, ame_lead_score: lead_score}
        mode: upsert            # or mirror: rows that leave the model are deleted at the destination
        consent: email          # the channel whose consent the destination's use needs (default: by destination)
        schedule: "0 * * * *"   # cron, validated
        destination: {type: hubspot, token_env: AME_HUBSPOT_TOKEN}

Secrets never sit in the file: destinations name the environment variable that holds them (``*_env``).
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Annotated, Any, Literal

import yaml
from croniter import croniter
from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    ValidationError,
    field_validator,
    model_validator,
)

from data.activation.errors import SyncConfigError

_IDENT = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
_NAME = re.compile(r"^[a-z0-9][a-z0-9_\-]{0,63}$")
_ENV = r"^[A-Z_][A-Z0-9_]*$"


class _Frozen(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class RetryPolicy(_Frozen):
    """Exponential backoff with full jitter on 429, 5xx and network errors; ``Retry-After`` wins when sent."""

    max_attempts: int = Field(5, ge=1, le=20, description="Attempts per request, the first included.")
    base_delay_s: float = Field(0.5, ge=0, le=60, description="Backoff base: attempt n waits up to base * 2**n.")
    max_delay_s: float = Field(30.0, ge=0, le=3600, description="Longest wait between attempts.")
    timeout_s: float = Field(30.0, gt=0, le=600, description="Socket timeout of one request.")


class RateLimit(_Frozen):
    """A token bucket: ``requests_per_second`` on average, bursts of ``burst`` requests."""

    requests_per_second: float = Field(10.0, gt=0, le=10_000)
    burst: int = Field(10, ge=1, le=10_000)


class WebhookDestination(_Frozen):
    """JSON batches POSTed to a URL, optionally signed (HMAC-SHA256 of ``timestamp.body``)."""

    type: Literal["webhook"]
    url: str = Field(pattern=r"^https?://")
    secret_env: str | None = Field(None, pattern=_ENV, description="Env var holding the HMAC secret.")
    signature_header: str = "X-AME-Signature"
    headers: dict[str, str] = Field(default_factory=dict)
    max_batch_size: int = Field(500, ge=1, le=10_000)


class FileDestination(_Frozen):
    """One file of changes per run under ``path/<sync>/``, with an ``_ame_op`` column (upsert/delete)."""

    type: Literal["csv", "parquet"]
    path: Path
    max_batch_size: int = Field(10_000, ge=1, le=1_000_000)


class SalesforceDestination(_Frozen):
    """sObject Collections upsert by external id (``PATCH /composite/sobjects/{Object}/{Field}``, 200 a call)."""

    type: Literal["salesforce"]
    instance_url: str = Field(pattern=r"^https?://")
    api_version: str = Field("v62.0", pattern=r"^v\d+\.\d$")
    sobject: str = Field("Lead", pattern=r"^[A-Za-z][A-Za-z0-9_]*$")
    external_id_field: str = Field(pattern=r"^[A-Za-z][A-Za-z0-9_]*$", description="Must be a key of `mapping`.")
    token_env: str = Field("AME_SALESFORCE_TOKEN", pattern=_ENV)
    max_batch_size: int = Field(200, ge=1, le=200)


class HubSpotDestination(_Frozen):
    """Contacts batch upsert by a unique property (``POST /crm/v3/objects/contacts/batch/upsert``, 100 a call)."""

    type: Literal["hubspot"]
    base_url: str = Field("https://api.hubapi.com", pattern=r"^https?://")
    object_type: str = Field("contacts", pattern=r"^[a-z0-9_]+$")
    id_property: str = Field("email", description="Unique property the upsert matches on; must be a key of `mapping`.")
    token_env: str = Field("AME_HUBSPOT_TOKEN", pattern=_ENV)
    max_batch_size: int = Field(100, ge=1, le=100)


class BrazeDestination(_Frozen):
    """``POST /users/track`` with attribute objects (at most 75 a request)."""

    type: Literal["braze"]
    rest_endpoint: str = Field(pattern=r"^https?://", description="Your instance's REST endpoint, e.g. https://rest.iad-01.braze.com")
    api_key_env: str = Field("AME_BRAZE_API_KEY", pattern=_ENV)
    external_id_field: str = Field("external_id", description="The mapped field that holds Braze's external_id.")
    max_batch_size: int = Field(75, ge=1, le=75)


class GoogleAdsDestination(_Frozen):
    """Customer Match through an offline user data job: create, addOperations (hashed ids), run."""

    type: Literal["google_ads"]
    base_url: str = Field("https://googleads.googleapis.com", pattern=r"^https?://")
    api_version: str = Field("v26", pattern=r"^v\d+$")
    customer_id: str = Field(pattern=r"^\d{10}$", description="Ads account, 10 digits without dashes.")
    user_list_id: str = Field(pattern=r"^\d+$")
    login_customer_id: str | None = Field(None, pattern=r"^\d{10}$")
    token_env: str = Field("AME_GOOGLE_ADS_TOKEN", pattern=_ENV, description="Env var of an OAuth access token.")
    developer_token_env: str = Field("AME_GOOGLE_ADS_DEVELOPER_TOKEN", pattern=_ENV)
    email_field: str | None = "email"
    phone_field: str | None = None
    default_country_code: str = Field("1", pattern=r"^\d{1,3}$", description="For phones written without +CC.")
    remove_gmail_dots: bool = Field(
        False, description="Also drop dots before @gmail.com/@googlemail.com (Google's enhanced-conversions rule)."
    )
    consent_ad_user_data: Literal["GRANTED", "DENIED", "UNSPECIFIED"] | None = "GRANTED"
    consent_ad_personalization: Literal["GRANTED", "DENIED", "UNSPECIFIED"] | None = "GRANTED"
    max_batch_size: int = Field(10_000, ge=1, le=100_000)

    @model_validator(mode="after")
    def _one_identifier(self) -> GoogleAdsDestination:
        if not self.email_field and not self.phone_field:
            raise ValueError("set email_field or phone_field: Customer Match needs at least one identifier")
        return self


DestinationConfig = Annotated[
    WebhookDestination | FileDestination | SalesforceDestination | HubSpotDestination | BrazeDestination
    | GoogleAdsDestination,
    Field(discriminator="type"),
]


def validate_cron(expression: str) -> str:
    """The expression if it is a valid 5-field cron string, else a ``ValueError`` that says why."""
    fields = expression.split()
    if len(fields) != 5:
        raise ValueError(
            f"cron {expression!r} has {len(fields)} fields; write 5: minute hour day-of-month month day-of-week"
            " (e.g. '0 * * * *' for hourly)"
        )
    if not croniter.is_valid(expression):
        raise ValueError(f"cron {expression!r} is not valid (e.g. '*/15 * * * *', '0 6 * * 1-5')")
    return expression


ConsentChannel = Literal["email", "sms", "push", "ad"]

DEFAULT_CONSENT: dict[str, ConsentChannel] = {"hubspot": "email", "braze": "email", "google_ads": "ad"}
"""The consent a destination's usual purpose needs: marketing e-mail for HubSpot and Braze, ad personalization for
Customer Match. Salesforce (sales), webhooks and files need none unless the sync names one."""


class SyncConfig(_Frozen):
    """One sync: a model of the warehouse, its mapping onto a destination, its mode and schedule."""

    name: str = Field(pattern=_NAME.pattern, description="Lowercase id of the sync (letters, digits, _ -).")
    model: str = Field(description="A table of the warehouse dataset, e.g. marts_sales_lead_scores.")
    identity_key: str = Field("customer_id", description="Column that identifies a row across runs.")
    mapping: dict[str, str] = Field(min_length=1, description="Destination field -> model column.")
    filter: str | None = Field(None, description="SQL predicate on the model (the audience), e.g. lead_tier = 'High'.")
    mode: Literal["upsert", "mirror"] = "upsert"
    consent: ConsentChannel | Literal["none"] | None = Field(
        None, description="Channel whose consent a row needs to be sent (none: no check; unset: the destination's default).")
    schedule: str = "0 * * * *"
    batch_size: int | None = Field(None, ge=1, le=100_000, description="Rows per request; capped by the destination.")
    rate_limit: RateLimit = Field(default_factory=RateLimit)
    retry: RetryPolicy = Field(default_factory=RetryPolicy)
    destination: DestinationConfig

    @field_validator("model", "identity_key")
    @classmethod
    def _identifier(cls, value: str) -> str:
        if not _IDENT.match(value):
            raise ValueError(f"{value!r} is not a plain SQL identifier (letters, digits, underscore)")
        return value

    @field_validator("mapping")
    @classmethod
    def _columns(cls, value: dict[str, str]) -> dict[str, str]:
        for field_name, column in value.items():
            if not _IDENT.match(column):
                raise ValueError(f"mapping {field_name!r}: column {column!r} is not a plain SQL identifier")
        return value

    @field_validator("schedule")
    @classmethod
    def _cron(cls, value: str) -> str:
        return validate_cron(value)

    @model_validator(mode="after")
    def _destination_keys_mapped(self) -> SyncConfig:
        d = self.destination
        needed: list[tuple[str, str]] = []
        if isinstance(d, SalesforceDestination):
            needed.append(("external_id_field", d.external_id_field))
        elif isinstance(d, HubSpotDestination):
            needed.append(("id_property", d.id_property))
        elif isinstance(d, BrazeDestination):
            needed.append(("external_id_field", d.external_id_field))
        elif isinstance(d, GoogleAdsDestination):
            needed += [(n, v) for n, v in (("email_field", d.email_field), ("phone_field", d.phone_field)) if v]
        for option, field_name in needed:
            if field_name not in self.mapping:
                raise ValueError(
                    f"destination.{option} is {field_name!r} but mapping has no such field; add "
                    f"`{field_name}: <model column>` to mapping (it has: {', '.join(sorted(self.mapping))})"
                )
        return self

    def consent_channel(self) -> ConsentChannel | None:
        """The channel whose consent a row needs: the sync's ``consent``, else the destination's default."""
        if self.consent == "none":
            return None
        return self.consent or DEFAULT_CONSENT.get(self.destination.type)

    def effective_batch_size(self) -> int:
        """Rows per request: the sync's batch size, capped by the destination's maximum."""
        cap = self.destination.max_batch_size
        return min(self.batch_size or cap, cap)


class SyncFile(_Frozen):
    """The top of a sync YAML file."""

    syncs: list[SyncConfig] = Field(min_length=1)

    @model_validator(mode="after")
    def _unique_names(self) -> SyncFile:
        seen: set[str] = set()
        for sync in self.syncs:
            if sync.name in seen:
                raise ValueError(f"two syncs are named {sync.name!r}; names must be unique")
            seen.add(sync.name)
        return self


def _where(loc: tuple[Any, ...], raw: Any) -> str:
    """``syncs[1] (name 'x').destination.url`` from a pydantic error location."""
    parts: list[str] = []
    for i, item in enumerate(loc):
        if isinstance(item, int):
            parts[-1] = f"{parts[-1]}[{item}]" if parts else f"[{item}]"
            if i == 1 and loc[0] == "syncs" and isinstance(raw, dict):
                syncs = raw.get("syncs")
                if isinstance(syncs, list) and item < len(syncs) and isinstance(syncs[item], dict):
                    name = syncs[item].get("name")
                    if name:
                        parts[-1] += f" (name {name!r})"
        else:
            parts.append(str(item))
    return ".".join(parts) or "<file>"


def parse_syncs(raw: Any, source: str = "<config>") -> SyncFile:
    """Validate already-parsed YAML; errors name the file, the sync, the field and the rule."""
    try:
        return SyncFile.model_validate(raw)
    except ValidationError as error:
        lines = []
        for e in error.errors(include_url=False):
            loc = tuple(x for x in e["loc"] if x not in {"webhook", "csv", "parquet", "salesforce", "hubspot",
                                                        "braze", "google_ads", "csv,parquet"})
            msg = e["msg"].removeprefix("Value error, ")
            lines.append(f"{source}: {_where(loc, raw)}: {msg} [rule: {e['type']}]")
        raise SyncConfigError("invalid sync configuration:\n  " + "\n  ".join(lines)) from None


def load_syncs(path: Path | str) -> SyncFile:
    """Read and validate a sync YAML file."""
    path = Path(path)
    if not path.is_file():
        raise SyncConfigError(
            f"no sync configuration at {path}; copy data/activation/syncs.example.yaml there, or pass --config FILE"
            " (or set AME_ACTIVATION_CONFIG)"
        )
    try:
        raw = yaml.safe_load(path.read_text(encoding="utf-8"))
    except yaml.YAMLError as error:
        raise SyncConfigError(f"{path}: not valid YAML: {error}") from None
    return parse_syncs(raw, source=str(path))
