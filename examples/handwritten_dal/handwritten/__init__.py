"""A dual-cache data access layer written from scratch, by the rules of docs/contract.md."""
