"""Relocation of an unpacked prefix from the paths it was built in to where it is installed."""
