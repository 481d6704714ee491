"""AS  asset management — devices, systems, actuator commands (AS-*). Not built yet."""
