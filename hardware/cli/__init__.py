"""Subcommands that hardware adds to ``aura-snn`` (entry points ``aura_snn.commands``)."""
