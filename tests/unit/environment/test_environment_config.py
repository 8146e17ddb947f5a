"""The market configuration's derived markets."""

from __future__ import annotations

import pytest

from environment.config import MarketConfig


def test_unsubscribe_price_scales_only_the_unsubscribe_values() -> None:
    config = MarketConfig()
    priced = config.with_unsub_price(4.0)
    assert priced.journey.unsub_value == [4.0 * v for v in config.journey.unsub_value]
    assert priced.journey.model_copy(update={"unsub_value": config.journey.unsub_value}) == config.journey
    assert priced.profile == config.profile and priced.auction == config.auction
    assert config.journey.unsub_value == MarketConfig().journey.unsub_value  # the original is untouched
    with pytest.raises(ValueError, match="unsubscribe price"):
        config.with_unsub_price(0.0)
