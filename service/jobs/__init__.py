"""Mining jobs over HTTP: corpus-sized ``xalign-mine`` jobs run by the service beside its live traffic."""
