"""The directory: organizations, accounts, roles, policies and OAuth clients (AU-UM-1..3)."""

from cityos.auth.directory.models import Account, Client, Organization, Policy, Purpose
from cityos.auth.directory.repo import Directory, hash_secret, normalize_username, opened_directory

__all__ = ["Account", "Client", "Directory", "Organization", "Policy", "Purpose", "hash_secret",
           "normalize_username", "opened_directory"]
