"""``python -m visionlake`` runs the CLI."""

from visionlake.cli import main

main()
