"""Layer 0, ``core``: what every layer needs and nothing domain-specific.

``errors`` (the one user-facing exception), ``io`` (atomic writes, CSV/JSON), ``cells`` (resumable
units of work on disk) and ``config`` (the one TOML loader and the field validators). Imports
nothing from ``spheres``.
"""
