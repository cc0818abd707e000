"""The `segmenter` command (also `python -m segmenter`): for `run`, the workers' fork server
starts before the command line's own imports, so that it is ready by the time files are
planned (batch/forkserver.py)."""

import sys


def main() -> int:
    """Run the command line on sys.argv."""
    argv = sys.argv[1:]
    if argv[:1] == ["run"]:
        from .batch import forkserver

        forkserver.start_for(argv[1:])
    from .cli import main as cli_main

    return cli_main(argv)


if __name__ == "__main__":
    sys.exit(main())
