"""Subcommand modules of the ``videor1`` CLI (see ``videor1.cli.COMMANDS``)."""
