"""Retention: what leaves a store and how — portable bundles of whole tasks (:mod:`.bundle`) and clean-up."""
