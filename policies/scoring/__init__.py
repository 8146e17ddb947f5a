"""Scoring models: lead and churn scores (XGBoost, calibrated, explained) and customer lifetime value
(BG/NBD + Gamma-Gamma). The scoring agent in ``agents/`` and the API load them from the registry."""
