"""Shared state every layer reads: install records, locks, source-mirror verification state."""
