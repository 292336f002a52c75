"""Industry templates: the typed schema, loading files, storing and validating rows."""
