"""Prime-order groups, passed in as values (never a module-global curve)."""
