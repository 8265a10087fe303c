"""Loss components: the contract (``base``), the composition, the ``loss:`` entries, one module per component."""
