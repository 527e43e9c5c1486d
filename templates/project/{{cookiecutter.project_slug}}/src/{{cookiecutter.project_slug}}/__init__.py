"""The installer's custom actions: see actions.py, built by ``msica build``."""
