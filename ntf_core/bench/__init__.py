"""The ntf-mini benchmark recipe (see :mod:`ntf_core.bench.build`)."""
