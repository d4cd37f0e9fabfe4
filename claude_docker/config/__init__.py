"""The config stage: find, load, interpolate, validate per file, merge, validate the result, and
build the typed, frozen model. Nothing here imports a later stage."""
