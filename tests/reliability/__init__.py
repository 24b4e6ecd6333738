"""Reliability and security: hostile input, hostile models, soak, faults, overload, supply chain."""
