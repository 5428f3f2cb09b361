"""Cache roots: downloaded tarballs kept between runs, addressed by sha256.

``roots`` picks the root for a URL, ``store`` reads and writes blobs, ``gc`` removes the
least recently used ones, ``units`` parses sizes and ages for the command line.
"""
