"""The ``ntf`` command: thin, it only parses and calls into ntf_core.

    ntf bench build [...]   build (or resume) the ntf-mini benchmark (python -m ntf_core.bench)
    ntf course [...]        run every notebook headless through papermill (python -m ntf_core.course)
"""
from __future__ import annotations

import sys


def main(argv=None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if argv[:1] == ["bench"]:
        from .bench.__main__ import main as sub
    elif argv[:1] == ["course"]:
        from .course import main as sub
    else:
        print(__doc__.strip(), file=sys.stderr if argv and argv[0] not in ("-h", "--help") else sys.stdout)
        return 0 if not argv or argv[0] in ("-h", "--help") else 2
    return sub(argv[1:])


if __name__ == "__main__":
    raise SystemExit(main())
