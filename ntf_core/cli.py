"""The ``ntf`` command: thin, it only parses and calls into ntf_core."""
from __future__ import annotations

import sys


def main(argv=None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if argv[:1] == ["bench"]:
        from .bench.__main__ import main as bench_main
        return bench_main(argv[1:])
    print("usage: ntf bench build [--preset full|tiny] [--out DIR] [--work DIR]\n"
          "  bench build   build (or resume) the ntf-mini benchmark (see data_samples/README.md)",
          file=sys.stderr if argv else sys.stdout)
    return 2 if argv and argv[0] not in ("-h", "--help") else 0


if __name__ == "__main__":
    raise SystemExit(main())
