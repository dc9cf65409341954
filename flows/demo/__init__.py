"""The talk's examples, live on a real broker: scenarios as data, loaded in one step.

- `scenario`: the typed model of a scenario file and its loader/validator (pure).
- `messages`: what one publish of a scenario's message template sends (pure).
- `loading`: putting a scenario into a vhost and taking exactly that out again.
- `workers`: the built-in publishers and workers, one thread and one connection each.
- `run`: `DemoRun`, which owns a scenario's publishers and workers and stops them all.
- `summary`: a run's counters as the table `manage.py demo run` prints (pure).
- `service`: what the scenario pages do (load, unload, run, change a run), with the
  permission check, and `DemoRuns`, the dashboard's runs, held by the runtime.
- `scenarios/`: one TOML file per scenario; drop in another file to add one.
"""
