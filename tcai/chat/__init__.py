"""The chat engine: one pipeline for every visitor message (docs/chat-pipeline.md)."""
