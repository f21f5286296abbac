"""A legacy-shaped cache (`legacy_cache.AdvancedMetadataCache`) and the adapter that puts it under tiercheck."""
