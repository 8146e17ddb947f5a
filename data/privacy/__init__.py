"""Personal data: the PII registry, per-customer keys, field encryption, erasure, export, activation hashing."""
