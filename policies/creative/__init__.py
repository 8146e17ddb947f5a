"""Creatives: generation (Gemini on Vertex AI, or the embedded templates), guardrails, human approval,
and a Thompson-sampling bandit per segment that serves approved variants with their propensities.

The serving entry point is :func:`policies.creative.serving.select_creative`.
"""
