"""A local Panoptes-compatible server for tests, the demo and benchmarks.

The real, unmodified ``panoptes-client`` talks to it over HTTP and cannot tell it from
zooniverse.org for the calls zooflow makes: auth, projects, workflows, subject sets, subjects,
retirement statuses and data exports. It adds what the real service cannot give a test: a
movable clock, simulated volunteers, fault injection and a request log, all behind ``/_sandbox/``.

Start it with ``zooflow sandbox serve`` or, from Python, ``zooflow.sandbox.process.SandboxProcess``.
"""
