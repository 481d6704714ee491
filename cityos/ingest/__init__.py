"""ED  external data integration — IoT agent, importers, payload transforms (ED-*).

File importers (CSV, GeoJSON, recommended datasets): :mod:`cityos.ingest.importers`.
"""
