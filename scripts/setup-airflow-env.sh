#!/usr/bin/env bash
# Creates the Airflow environment (.venv-airflow) that runs deploy/airflow/dags/costmesh_distill.py.
# A separate environment: Airflow pins its own SQLAlchemy, pydantic and FastAPI, and the DAG needs none of
# costmesh's code (it runs the `costmesh distill` commands from .venv). No constraints file (it lives on
# GitHub, out of reach here): uv resolves apache-airflow's own bounds from the package index.
set -euo pipefail
cd "$(dirname "$0")/.."
VENV=${COSTMESH_AIRFLOW_VENV:-.venv-airflow}
AIRFLOW_VERSION=3.3.2

# The check reads package metadata instead of importing airflow: the import writes $AIRFLOW_HOME (~/airflow
# when unset) and takes seconds.
if [ -x "$VENV/bin/airflow" ] && "$VENV/bin/python" -c "from importlib.metadata import version as v
assert v('apache-airflow') == '$AIRFLOW_VERSION' and v('apache-airflow-providers-standard')" 2>/dev/null; then
  echo "airflow env ready: $VENV"; exit 0
fi
[ -x "$VENV/bin/python" ] || uv venv --quiet --python 3.11 "$VENV"
uv pip install --quiet --python "$VENV/bin/python" "apache-airflow==$AIRFLOW_VERSION"
echo "airflow env ready: $VENV"
