"""The simulated market: gymnasium environments for customer journeys and ad auctions, numpy-vectorized,
calibrated on the Hillstrom experiment, with computed upper bounds. Uses only ``data``'s event schemas.

Registered ids: ``ame/Journey-v0`` and ``ame/Auction-v0`` (``gymnasium.make("ame/Journey-v0")``).
"""

from __future__ import annotations

from gymnasium.envs.registration import register, registry

if "ame/Journey-v0" not in registry:
    register(id="ame/Journey-v0", entry_point="environment.journey:JourneyEnv", max_episode_steps=None)
if "ame/Auction-v0" not in registry:
    register(id="ame/Auction-v0", entry_point="environment.auction:AuctionEnv", max_episode_steps=None)
