"""Summaries of the current query: sessions read turn by turn, and users."""
