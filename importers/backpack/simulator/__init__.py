"""A wire-faithful Backpack Exchange simulator on loopback (docs/simulator.md).

``server.run_cli`` is the ``reconcile simulate`` entry point; ``server.serve_in_thread`` serves a
world in-process for tests and ``reconcile demo``; ``generate.generate_world`` builds the seeded
account; ``scenario.load_scenario`` serves an account from a JSON scenario file
(docs/scenario-format.md).
"""
