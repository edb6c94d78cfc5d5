"""Training processes, one per framework. Never imported by the dashboard (twinboard/, pages/)."""
