"""The tap: capture every message on a vhost without changing it, and feed it to viewers."""
