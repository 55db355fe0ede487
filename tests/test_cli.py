"""The `ntf` command dispatches to its subcommands."""

import pytest


def test_cli_dispatches_and_rejects_unknown_commands(capsys):
    from ntf_core.cli import main

    assert main([]) == 0 and "ntf bench build" in capsys.readouterr().out
    assert main(["frobnicate"]) == 2
    with pytest.raises(SystemExit):  # argparse: --help exits 0 after printing
        main(["bench", "--help"])
