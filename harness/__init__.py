"""Tools that run the tap against the fake Usersnap API, for the tests, the demo and the benchmark.

A development package, like :mod:`fake_usersnap` (which it uses, and which never uses it): the
wheel ships only ``tap_usersnap``.

- :mod:`~harness.singer_run`: run the tap in this process or as its console script (also
  killed mid-run) and sort the Singer messages it printed;
- :mod:`~harness.clock`: :class:`~harness.clock.FakeClock`, a clock whose waits pass at once;
- :mod:`~harness.pg_cluster`: a throwaway PostgreSQL cluster, started and deleted by the tests;
- :mod:`~harness.meltano_project`: the ``meltano`` command line on a copy of this repository's
  ``meltano.yml``, in a clean environment;
- :mod:`~harness.warehouse`: what a warehouse keeps of the tap's output (live and deleted rows);
- :mod:`~harness.sql_target`: the Singer SDK's SQL target over SQLite, in process;
- :mod:`~harness.reliability`: the reliability suite's scorekeeping: fault scenarios, the
  checks every run must pass, and the figures for ``docs/reliability.md``.
"""
