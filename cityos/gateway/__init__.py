"""SI  API registry, gateway, developer portal, federation (SI-AM-*, SI-IC-*). Not built yet."""
