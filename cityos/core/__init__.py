"""Core: settings, app factory, storage URLs, problem details. Every block may import it."""
