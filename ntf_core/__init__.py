"""ntf_core: a small, faithful implementation of Natural Trace Forensics (NTF).

Data flows one way: config -> data -> models / losses -> train -> evaluate -> viz.
The ntf-mini benchmark recipe lives in :mod:`ntf_core.bench` and sits on top of the rest.
"""

__version__ = "0.1.0"
