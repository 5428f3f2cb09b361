"""Source mirrors: the archives that ``[[source]]`` tables ask a file mirror to hold, in
Spack's source-mirror layout, as a small pipeline of its own.

``observe_source_mirror`` (read-only facts) -> ``plan_sources`` (pure) -> ``apply_sources``
(the only writer). A verification state kept in the mirror lets a plan trust an archive whose
size and mtime are unchanged since it was last hashed; ``check_contents`` hashes anyway.
"""
