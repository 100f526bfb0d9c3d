"""Deliberately broken DALs: one real bug each, taken from the seed project and its history.

Each module has ``make_dal(env)`` and a docstring naming its bug, where it came from and
the contract clause it breaks; ``EXPECTED`` maps module name to that clause.
``tests/test_broken_dals.py`` runs the contract suite against all of them at once and checks
each fails its clause (and the reference fails nothing). Register one by hand with
``pytest --dualcache --dualcache-factory=<name>=examples.broken.<name>:make_dal``.
"""

EXPECTED: dict[str, str] = {
    "flag_truthy_string": "FB-1",
    "do_error_swallowed": "FB-3",
    "local_cache_ignores_ttl": "TTL-6",
    "ttl_zero_means_default": "TTL-5",
    "kv_ttl_dropped": "TTL-1",
    "kv_write_through": "FB-2",
    "no_retry_on_429": "FB-5",
    "str_not_json": "SER-1",
    "no_flip_generation": "FLIP-2",
    "delete_do_only": "LOC-2",
    "shared_local_values": "SER-3",
    "local_key_mismatch": "LOC-1",
    "kv_ttl_clamped": "TTL-3",
    "nan_accepted": "SER-2",
    "flag_read_once": "FLIP-1",
}
