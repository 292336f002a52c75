"""tcai: AI chat assistants for local businesses, run by an agency.

The core library. Nothing here reads the environment or opens a connection at import time;
`tcai.config.load_settings()` builds the settings and callers pass them down.
"""

__version__ = "0.1.0"
