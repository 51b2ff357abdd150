"""Shared fixtures: real SQLite, real PostgreSQL, a real moto S3 server."""
