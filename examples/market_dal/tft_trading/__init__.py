"""The TFT trading system's data layer, in the three shapes the migration went through.

``legacy`` writes Workers KV directly (the seed's ``dal.ts``, ``data.ts`` and
``kv-utils.ts``); ``migrated`` sends every write through ``CacheAbstraction`` (Durable
Object first, KV fallback); ``worker`` is the migrated DAL as Python Workers code (async,
JS binding names). All three store the same records under the same keys (``keys``).
"""
