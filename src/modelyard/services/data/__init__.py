"""Data versioning in a git working tree: one operation per module, over one ``Workspace``."""
