"""What the senders need to reach the providers: base URLs, credentials, sender identities, rate limits, retries.

Built from the settings (``AME_CHANNELS_*``) where the dispatcher runs, so no secret travels inside a pickled
agent; tests build it directly, pointing the URLs at a stub on 127.0.0.1.
"""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field, SecretStr

from data.activation.config import RateLimit, RetryPolicy
from data.settings import Settings, get_settings

WEBHOOK_PATH = "/v1/webhooks/{provider}"
"""Where the decision API takes each provider's webhook."""


class _Frozen(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class SendGridConfig(_Frozen):
    """E-mail through SendGrid v3 ``POST /v3/mail/send``."""

    url: str = Field("https://api.sendgrid.com", pattern=r"^https?://")
    api_key: SecretStr = SecretStr("")
    sender: str = Field("", description="The From address.")


class TwilioConfig(_Frozen):
    """SMS through Twilio ``POST /2010-04-01/Accounts/{sid}/Messages.json``."""

    url: str = Field("https://api.twilio.com", pattern=r"^https?://")
    account_sid: str = ""
    auth_token: SecretStr = SecretStr("")
    sender: str = Field("", description="The From number (E.164), or a Messaging Service SID (MG...).")
    status_callback: str = Field("", description="The status callback URL Twilio calls (empty: none).")


class FcmConfig(_Frozen):
    """Push through Firebase Cloud Messaging HTTP v1 ``POST /v1/projects/{project}/messages:send``."""

    url: str = Field("https://fcm.googleapis.com", pattern=r"^https?://")
    project: str = ""
    access_token: SecretStr = Field(SecretStr(""), description="A fixed OAuth token; empty: Application Default Credentials.")


class ProvidersConfig(_Frozen):
    """Every provider, and the activation layer's rate limit and retry policy each sender's transport uses."""

    sendgrid: SendGridConfig = SendGridConfig()
    twilio: TwilioConfig = TwilioConfig()
    fcm: FcmConfig = FcmConfig()
    retry: RetryPolicy = RetryPolicy()
    rate_limit: RateLimit = RateLimit()

    @staticmethod
    def from_settings(settings: Settings | None = None) -> ProvidersConfig:
        """The providers as the settings describe them (``AME_CHANNELS_*``)."""
        s = settings or get_settings()
        base = s.channels_webhook_base_url.rstrip("/")
        return ProvidersConfig(
            sendgrid=SendGridConfig(url=s.channels_sendgrid_url, api_key=s.channels_sendgrid_api_key,
                                    sender=s.channels_email_from),
            twilio=TwilioConfig(url=s.channels_twilio_url, account_sid=s.channels_twilio_account_sid,
                                auth_token=s.channels_twilio_auth_token, sender=s.channels_sms_from,
                                status_callback=base + WEBHOOK_PATH.format(provider="twilio") if base else ""),
            fcm=FcmConfig(url=s.channels_fcm_url, project=s.channels_fcm_project, access_token=s.channels_fcm_access_token),
        )
