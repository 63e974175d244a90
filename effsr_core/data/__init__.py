"""Offline data sets for demos and tests, generated deterministically from scikit-image's bundled photos."""
