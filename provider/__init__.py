"""traefik-bluegreen's provider: the config source Traefik polls, and its controls."""
