"""The real programs of the platform's services, in images built on this machine."""
