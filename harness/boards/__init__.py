"""Leaderboards: statistics, ranking policy, building from the store, rendering."""
