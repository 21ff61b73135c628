"""simgate: a self-hosted SMS and voice gateway."""
