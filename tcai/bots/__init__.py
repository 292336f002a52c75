"""Bots: their configuration document, look-ups and changes."""
