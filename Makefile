# Everything a developer or CI runs. The first two targets are all a new machine needs:
#   make local   the whole system offline (moto, provider sandbox, local API, demo site)
#   make test    lint, unit, template, integration and browser tests
SHELL := /bin/bash
.DEFAULT_GOAL := help

VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
# checkov pins boto3 and friends far from ours: it lives in its own venv (tests find it there).
CHECKOV_VENV := .venv-checkov
CHECKOV_STAMP := $(CHECKOV_VENV)/.installed
# SAM builds python3.13 functions with a python3.13 on PATH: the venv provides one.
export PATH := $(CURDIR)/$(BIN):$(PATH)
# The project's own sam commands send no usage telemetry.
export SAM_CLI_TELEMETRY := 0

# Python 3.13 from pyenv's versions or PATH; each candidate is run, since a pyenv shim may exist
# for a version that is not active.
PYTHON313 = $(shell for p in $$(ls -d "$$(pyenv root 2>/dev/null)"/versions/3.13*/bin/python3.13 2>/dev/null) \
	$$(command -v python3.13); do "$$p" -c 'import sys; sys.exit(sys.version_info[:2] != (3, 13))' 2>/dev/null \
	&& echo "$$p" && break; done)

.PHONY: help venv local test lint unit integration browser-deps stats stats-local submissions submissions-local build deploy delete sam validate bench lock clean fuzz

help:
	@echo "make local    run the whole system offline (API on http://127.0.0.1:3000, demo on :3002)"
	@echo "make test     run every test (creates .venv and installs Chromium if needed)"
	@echo "make stats    challenge-log figures, e.g. make stats ARGS='--provider byebot --since 7d'"
	@echo "make stats-local  the same against a running make local"
	@echo "make submissions  list, export or erase submissions, e.g. make submissions ARGS='export -o out.csv'"
	@echo "make submissions-local  the same against a running make local"
	@echo "make build    sam build;  make validate: cfn-lint and sam validate --lint"
	@echo "make deploy   check credentials, build, deploy (the first time asks seven questions; ARGS='--guided' asks again)"
	@echo "make delete   remove the stack make deploy made;  make sam ARGS='...': any sam command"
	@echo "make bench    cold start and warm latency against a naive handler, e.g. make bench ARGS='--spawns 11'"
	@echo "make fuzz     the fuzz suite with many examples (FUZZ_EXAMPLES=N), and its statistics"

venv: $(STAMP)

# The venv is made from the hashed lock by uv (seconds, where pip's resolve and install took a
# minute); uv itself is bootstrapped with the venv's own pip at the version the lock pins.
UV_VERSION = $(shell sed -n 's/^uv==//p' requirements-dev.txt)
UV = $(BIN)/uv
LAYER_LOCK_FLAGS = --python-version 3.13 --python-platform aarch64-manylinux2014 --generate-hashes \
	--no-emit-package botocore --no-emit-package python-dateutil --no-emit-package six

$(STAMP): requirements-dev.lock pyproject.toml
	@test -n "$(PYTHON313)" || { echo "Python 3.13 not found (pyenv install 3.13 or put python3.13 on PATH)"; exit 1; }
	test -x $(BIN)/python || "$(PYTHON313)" -m venv $(VENV)
	test -x $(UV) || $(BIN)/python -m pip install --quiet --disable-pip-version-check --no-deps "uv==$(UV_VERSION)"
	$(UV) pip sync --quiet --python $(BIN)/python --require-hashes requirements-dev.lock
	$(UV) pip install --quiet --python $(BIN)/python --no-deps --no-build-isolation -e .
	touch $(STAMP)

# checkov's own venv, made by uv like the main one (its pins conflict with ours).
$(CHECKOV_STAMP): requirements-checkov.txt $(STAMP)
	test -x $(CHECKOV_VENV)/bin/python || $(UV) venv --quiet --python "$(PYTHON313)" $(CHECKOV_VENV)
	$(UV) pip install --quiet --python $(CHECKOV_VENV)/bin/python -r requirements-checkov.txt
	touch $(CHECKOV_STAMP)

# After editing requirements-dev.txt or functions/shared/requirements.txt: rewrite both locks.
# The layer's lock leaves out botocore and its own dependencies: the Lambda runtime provides them
# (see README, Performance).
lock: $(STAMP)
	$(UV) pip compile --quiet requirements-dev.txt --universal --python-version 3.13 --generate-hashes \
		-o requirements-dev.lock
	cd functions/shared && $(CURDIR)/$(UV) pip compile --quiet requirements.txt $(LAYER_LOCK_FLAGS) -o requirements.lock

local: $(STAMP)
	$(BIN)/captcha-local $(ARGS)

# Debian's Chromium for the browser test; never a browser download.
browser-deps:
	@command -v chromium >/dev/null || { \
		if [ "$$(id -u)" = 0 ]; then apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null; \
		else sudo apt-get update -qq && sudo DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null; fi; }

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy functions/shared/captcha_verify tools/captcha_local tools/captcha_stats tools/captcha_deploy \
		tools/captcha_bench tools/captcha_submissions

test: $(STAMP) $(CHECKOV_STAMP) browser-deps lint
	$(BIN)/python -m pytest

# Many more fuzz examples than `make test` runs (3000, or FUZZ_EXAMPLES=100000 make fuzz), with
# examples per second, hypothesis's statistics and the slowest input.
fuzz: $(STAMP)
	HYPOTHESIS_PROFILE=fuzz $(BIN)/python -m pytest tests/fuzz -q -s --hypothesis-show-statistics

unit: $(STAMP)
	$(BIN)/python -m pytest tests/unit tests/tools

integration: $(STAMP)
	$(BIN)/python -m pytest tests/integration tests/browser

stats: $(STAMP)
	$(BIN)/captcha-stats $(ARGS)

# Against the challenge log of a running `make local`.
stats-local: $(STAMP)
	AWS_ENDPOINT_URL=http://127.0.0.1:3003 AWS_ACCESS_KEY_ID=local AWS_SECRET_ACCESS_KEY=local \
	AWS_DEFAULT_REGION=us-east-1 CHALLENGE_TABLE_NAME=ChallengeTable $(BIN)/captcha-stats $(ARGS)

submissions: $(STAMP)
	$(BIN)/captcha-submissions $(ARGS)

# Against the submission store of a running `make local` (default: list).
submissions-local: $(STAMP)
	AWS_ENDPOINT_URL=http://127.0.0.1:3003 AWS_ACCESS_KEY_ID=local AWS_SECRET_ACCESS_KEY=local \
	AWS_DEFAULT_REGION=us-east-1 SUBMISSION_TABLE_NAME=SubmissionTable $(BIN)/captcha-submissions $(or $(ARGS),list)

build: $(STAMP)
	$(BIN)/sam build

# Checks the AWS credentials, asks (the first time), then runs sam build and sam deploy.
deploy: $(STAMP)
	$(BIN)/captcha-deploy $(ARGS)

# Removes the stack make deploy made (its name and region are saved in samconfig.toml).
delete: $(STAMP)
	$(BIN)/sam delete $(ARGS)

# Any other SAM CLI command with the project's pinned sam, e.g. make sam ARGS='logs --tail'.
sam: $(STAMP)
	$(BIN)/sam $(ARGS)

validate: $(STAMP)
	$(BIN)/cfn-lint template.yaml
	$(BIN)/sam validate --lint --region us-east-1

# A benchmark, not a test: prints a table and writes .aws-sam/bench.json (see README, Performance).
bench: $(STAMP)
	$(BIN)/captcha-bench $(ARGS)

clean:
	rm -rf $(VENV) $(CHECKOV_VENV) .aws-sam .pytest_cache .ruff_cache
