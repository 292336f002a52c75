"""The chat engine: one pipeline for every visitor message (SPEC §6)."""
