"""reconcile: a declarative reconciler for Spack source mirrors, binary caches and install trees."""

__version__ = "0.1.0.dev0"
