"""The local stack's launcher: what `costmesh up`, `down` and `status` run, and what benches and tests use
to start components. It imports neither the CLI (services/cli) nor the benches (bench/): the CLI imports
both, and the benches import this, so the arrows go cli -> bench -> launcher and never back."""
