"""Paging: who is paged for which incident, through which channel, and when."""
