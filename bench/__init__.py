"""CityOS benchmarks: ``python -m bench`` (or ``make bench``) against a real ``cityos serve``.

Every scenario talks HTTP/1.1 with keep-alive to a ``cityos serve`` subprocess (one uvicorn
worker) on 127.0.0.1 only; this process is the load generator, so the broker and the load share
the machine's cores the way a client and a server on one host do.  Request loops are bounded in
both count and time, and servers and throw-away databases are removed on exit.  See
``bench/RESULTS.md`` for the latest numbers and ``python -m bench --help`` for the options.
"""

LOOPBACK = "127.0.0.1"
