"""Retention: what a store keeps, for how long, and how runs move between stores."""
