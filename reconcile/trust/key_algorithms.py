"""The algorithms ``reconcile keys generate`` makes keys with: its own module so that the
command line's parser can offer them without importing key generation."""

from __future__ import annotations

ALGORITHMS = ("ed25519", "rsa4096")
