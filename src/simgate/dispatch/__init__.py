"""The worker side: lease due messages, route them to line ports, record what lines say."""
