"""SI  API registry, gateway, developer portal, federation (SI-AM-*, SI-IC-*, SI-CS-1).

Built so far: the API console (SI-CS-1) — :mod:`cityos.gateway.apidocs` serves the OpenAPI 3.1
document of the NGSI-LD API at ``/openapi.json`` (built by :mod:`cityos.gateway.openapi_ngsild`
from the app's own routes) and an offline Swagger UI at ``/docs``.
"""
