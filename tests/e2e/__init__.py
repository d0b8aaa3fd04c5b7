"""End-to-end: the program's Docker inputs on a real engine, routed by a real Traefik."""
