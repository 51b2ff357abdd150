"""The shared deployment's server: REST API (``/api/v1``), content by digest, health."""
