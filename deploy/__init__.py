"""traefik-bluegreen's operator side: the ``bluegreen`` command line."""
