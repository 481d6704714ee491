"""SM  service management — service registry, subscriptions, usage history (SM-*). Not built yet."""
