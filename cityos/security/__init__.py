"""SE  audit log, request limits, secrets (SE-1)."""
