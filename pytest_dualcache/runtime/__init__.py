"""The in-process Python Workers runtime: a team's own Worker and Durable Object classes.

- ``importer``: the import hook providing ``workers``, ``pyodide``, ``pyodide.ffi``, ``js``
- ``entrypoints``: ``WorkerEntrypoint``, ``DurableObject``, a handler's ``ctx``
- ``http``: ``Request``, ``Response``, ``fetch`` (no network)
- ``ffi``: ``to_js``, the ``JsProxy`` values bindings return, JavaScript's errors, ``js``
- ``clone``: structured clone of RPC arguments, results and stored values, and their size
- ``storage``: ``ctx.storage`` and its limits
- ``objects``: a Durable Object's id, its ``ctx`` and a stub
- ``durable_objects``: namespaces, calls, alarms, faults, ``build_namespaces``

Nothing is imported here: ``importer`` must stay cheap to load.
"""
