"""``python -m divekit`` runs the command-line interface."""

from divekit.cli import main

if __name__ == "__main__":
    raise SystemExit(main())
