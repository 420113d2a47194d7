"""``aura-snn`` subcommands of the hippocampal transformer, registered as plugins in the
entry-point group ``aura_snn.commands`` (``setup.cfg``), so the core never imports
:mod:`hybrid`: ``train`` (:mod:`.train`) and ``generate`` (:mod:`.generate`). Each module
has ``HELP``, ``add_arguments`` and ``run`` and imports only :mod:`argparse` at module
level."""
