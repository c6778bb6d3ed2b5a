"""The audit log (audit.k8s.io/v1): policy.py decides per request, middleware.py
makes the Event, sink.py writes JSON lines through a bounded queue, rotated."""
