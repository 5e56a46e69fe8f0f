"""The request path: a call context, stages around one attempt loop over candidate models, and
one ending that records the trace. See `daemon/gateway.py` for how they fit together."""
