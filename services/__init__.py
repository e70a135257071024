"""The services. Each owns its tables, its facade and its event handlers; none imports another."""
