# costmesh: the two commands a new user needs are `make run` and `make test`.
PY := .venv/bin/python
COSTMESH := $(PY) -m services.cli
export PATH := $(HOME)/go/bin:$(PATH)

.PHONY: setup run up down status test lint protos check-protos unit bench clean

setup:  ## install whatever is missing (system packages, Go tools, both Python environments, models)
	bash scripts/setup.sh

run: setup  ## start the whole stack (supervised) and send a demo request with the demo key
	$(COSTMESH) up --supervise
	$(COSTMESH) ask "What is the capital of France?"
	$(COSTMESH) ask "What is the capital of France?"
	@echo; echo "costmesh is running: try 'make status', '.venv/bin/costmesh ask \"...\" --json', 'make down'"

up:
	$(COSTMESH) up

down:
	$(COSTMESH) down

status:
	$(COSTMESH) status

# The suite serves the 0.5B stand-in as the large tier: no test needs the 1.5B's quality, and it answers
# faster. `COSTMESH_STACK_LARGE_MODEL=qwen2.5-coder-1.5b-instruct make test` runs it on the 1.5B.
test: export COSTMESH_STACK_LARGE_MODEL ?= qwen2.5-coder-0.5b-instruct-awq
test: setup lint check-protos  ## the whole suite: unit, service, integration (real Redis/Weaviate/vLLM), e2e
	$(PY) -m pytest -v -rs --durations=15 tests

unit:
	$(PY) -m pytest -q tests/unit tests/service

lint:
	$(PY) -m ruff check services launcher bench workloads training tests scripts deploy integrations examples
	$(PY) -m ruff format --check services launcher bench workloads training tests scripts deploy integrations examples
	$(PY) -m mypy

protos:  ## regenerate the one copy of the stubs
	bash scripts/gen-protos.sh

check-protos:  ## fails when the committed stubs differ from what the .proto files generate
	@tmp=$$(mktemp -d) && bash scripts/gen-protos.sh $$tmp && \
	  diff -r -x '__init__.py' -x '__pycache__' -x '*.proto' $$tmp/costmesh/v1 protos/costmesh/v1 \
	  && echo "stubs are up to date"; status=$$?; rm -rf $$tmp; exit $$status

bench:
	$(COSTMESH) bench mesh

clean:
	rm -rf .run .data
