"""spheres: the geometry of adversarial examples on two concentric spheres.

Reproduces and extends Gilmer et al. (2018), "Adversarial Spheres" (arXiv:1801.02774):
uniform data on spheres of radius 1 (label 0) and R = 1.3 (label 1) in R^d, trained
classifiers, their error-set measure mu(E) and nearest-error distance d(E), and the exact
isoperimetric (spherical cap) bound that ties the two together.

Modules:
  geometry    sampling, projections and distances on spheres (per example; batch with vmap)
  theory      exact cap measures and the optimal d(E) curve, in float64
  errors      the one exception type the command line turns into "exit 2"
  io          atomic file writes
"""

__version__ = "0.1.0"
