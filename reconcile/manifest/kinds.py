"""The key kinds a manifest may pin: its own module so that the command line's parser can
name them without importing the manifest model."""

from __future__ import annotations

SUPPORTED_KEY_KINDS: tuple[str, ...] = ("gpg", "ed25519", "sigstore")
# The kinds ``keys generate`` makes (a sigstore identity has no long-lived secret).
GENERATED_KEY_KINDS: tuple[str, ...] = ("gpg", "ed25519")
