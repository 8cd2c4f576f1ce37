"""Threshold protocols, each driven by the round state machine in rounds.py."""
