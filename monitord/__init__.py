"""monitord: monitoring and alerting daemon for a managed-IT-services desk."""

__version__ = "0.1.0"
