"""ED  external data integration — IoT agent, importers, payload transforms (ED-*). Not built yet."""
