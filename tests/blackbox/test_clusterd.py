"""clusterd (issue 19): a node's synchronisation with PostgreSQL."""
