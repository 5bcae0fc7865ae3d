"""The task's constants, defined once: the inner sphere has radius 1 (label 0), the outer radius R
(label 1) defaults to the paper's 1.3, and dimensions start at 2."""

INNER_RADIUS = 1.0
OUTER_RADIUS = 1.3
MIN_DIM = 2
