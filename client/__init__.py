"""The typed Python client of the xalign HTTP API (extra ``client``)."""
