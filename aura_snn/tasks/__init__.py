"""Ready-made tasks used by the ``aura-snn`` command, the examples and the tests."""
