"""Text every part uses: normalising for matching, contact extraction, redaction.

Imports nothing of tcai's (docs/architecture.md): the lowest floor above the foundation.
"""
