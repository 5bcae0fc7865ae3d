"""Layer 5, ``experiments``: one module per experiment, all with one interface; ``reproduce`` runs them."""
