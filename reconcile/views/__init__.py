"""Views: installed prefixes merged into one tree, built as numbered generations that the
view's symlink points at (switched atomically, rolled back on demand)."""
