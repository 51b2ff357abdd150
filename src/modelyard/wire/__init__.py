"""What the REST server and the remote client agree on: routes, arguments, error bodies."""
