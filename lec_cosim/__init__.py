"""lec-cosim: HELICS co-simulation of local energy communities in distribution grids."""

__version__ = "0.1.0"
