"""Figures. All matplotlib lives under ``spheres.plotting``; nothing else in ``spheres`` imports it.

Each module draws one family of figures from data computed (or loaded) beforehand, saves that
data as CSV beside every PNG, and uses the Agg canvas through ``matplotlib.figure.Figure``
(never pyplot), so it works on machines without a display.

Modules:
  bound   the exact isoperimetric bound: optimal d(E) against dimension and against error rate
"""
