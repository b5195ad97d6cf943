"""Retention: what a store keeps, for how long, and how runs move between stores (:mod:`.gc`, :mod:`.pins`,
:mod:`.bundle`)."""
