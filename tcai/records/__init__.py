"""What a workspace accumulates, for operators: leads (list, export), conversations,
privacy export and erasure, retention, and the one registry of workspace-owned tables
(`tables.py`) that privacy, retention and provisioning all read."""
