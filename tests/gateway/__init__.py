"""Tests of the gateway block: the OpenAPI document and the API console."""
