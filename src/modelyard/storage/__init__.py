"""How things are kept: ``sql`` (metadata), ``content`` (bytes by digest), ``index`` (local
SQLite caches). Services call down into these; nothing here knows about use cases."""
