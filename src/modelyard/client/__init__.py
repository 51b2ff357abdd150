"""The caller's side of a shared deployment: the remote registry and content by digest."""
