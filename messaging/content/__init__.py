"""Templates: safe rendering, compile-once versions, merge tags and the file catalog."""
