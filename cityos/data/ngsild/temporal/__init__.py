"""The NGSI-LD temporal API (/temporal/entities): history queries, aggregations, retention."""
