"""Threshold protocols, each a chain of `Round`s run by the session `Driver` in driver.py."""
