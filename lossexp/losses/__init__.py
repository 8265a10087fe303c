"""Loss components: the contract (``base``), the registry, and one module per component."""
