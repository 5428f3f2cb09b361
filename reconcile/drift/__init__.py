"""``reconcile drift``: a read-only audit of what reconcile manages against what it recorded."""
