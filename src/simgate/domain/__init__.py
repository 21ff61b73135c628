"""Values and rules of simgate, with no I/O."""
