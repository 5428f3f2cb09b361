"""Air-gapped bundles: one tar archive carrying what a manifest needs to a machine without
network access, and importing it there only after everything in it is verified."""
