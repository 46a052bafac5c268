"""The daemon's HTTP server: /metrics, /healthz and the JSON API."""
