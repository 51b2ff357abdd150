"""``python -m modelyard`` runs the CLI."""

from modelyard.cli.main import main

main()
