"""OP  health, metrics, backup and restore, admin CLI (OP-*)."""
