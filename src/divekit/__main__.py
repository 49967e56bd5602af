"""``python -m divekit`` runs the command-line interface."""

from divekit.cli import run

if __name__ == "__main__":
    run()
