"""Settings, command line and service supervision for the DP-GCN recommender."""

__version__ = "0.1.0"
