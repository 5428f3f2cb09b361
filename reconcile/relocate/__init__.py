"""Relocation of an unpacked prefix from the paths it was built in to where it is installed.

``prefix_map`` builds the ordered old -> new map; ``package.relocate_package`` plans every
binary first (``elf`` search paths and interpreter, ``cstrings`` hard-coded strings), refuses
what cannot be done, then rewrites ``text`` files, binaries (in place, or with ``patchelf``
when an ELF string grows) and ``links``.
"""
