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

.PHONY: help format venv local test lint unit integration browser-deps stats stats-local submissions submissions-local build deploy delete sam validate bench lock clean fuzz

# `make help` prints every target that has a `## ` description on its rule line, in file order.
help: ## this list
	@awk 'BEGIN {FS = ":.*## "} /^[a-z][a-z0-9-]*:.*## / {printf "  make %-18s %s\n", $$1, $$2}' $(MAKEFILE_LIST)

venv: $(STAMP) ## create .venv from the hashed lock (every other target does it when needed)

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
# (see docs/performance.md).
lock: $(STAMP) ## rewrite both locks after editing requirements-dev.txt or functions/shared/requirements.txt
	$(UV) pip compile --quiet requirements-dev.txt --universal --python-version 3.13 --generate-hashes \
		-o requirements-dev.lock
	cd functions/shared && $(CURDIR)/$(UV) pip compile --quiet requirements.txt $(LAYER_LOCK_FLAGS) -o requirements.lock

local: $(STAMP) ## run the whole system offline (API on http://127.0.0.1:3000, demo on :3002)
	$(BIN)/captcha-local $(ARGS)

# Debian's Chromium for the browser test; never a browser download.
browser-deps: ## install Debian's Chromium for the browser test if it is missing
	@command -v chromium >/dev/null || { \
		if [ "$$(id -u)" = 0 ]; then apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null; \
		else sudo apt-get update -qq && sudo DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null; fi; }

# Where `make lint` finds a style fault, `make format` rewrites it.
format: $(STAMP) ## rewrite the code in the project's style (ruff format, then ruff's safe fixes)
	$(BIN)/ruff format .
	$(BIN)/ruff check --fix .

lint: $(STAMP) ## ruff (with the complexity gate), ruff format --check and mypy
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy functions/shared/captcha_verify tools/captcha_local tools/captcha_stats tools/captcha_deploy \
		tools/captcha_bench tools/captcha_submissions

test: $(STAMP) $(CHECKOV_STAMP) browser-deps lint ## run every test (creates .venv and installs Chromium if needed)
	$(BIN)/python -m pytest

# Many more fuzz examples than `make test` runs (3000, or FUZZ_EXAMPLES=100000 make fuzz), with
# examples per second, hypothesis's statistics and the slowest input.
fuzz: $(STAMP) ## the fuzz suite with many examples (FUZZ_EXAMPLES=N) and its statistics
	HYPOTHESIS_PROFILE=fuzz $(BIN)/python -m pytest tests/fuzz -q -s --hypothesis-show-statistics

unit: $(STAMP) ## the layer and tool tests only
	$(BIN)/python -m pytest tests/unit tests/tools

integration: $(STAMP) ## the integration and browser tests only
	$(BIN)/python -m pytest tests/integration tests/browser

stats: $(STAMP) ## challenge-log figures, e.g. make stats ARGS='--provider byebot --since 7d'
	$(BIN)/captcha-stats $(ARGS)

# Against the challenge log of a running `make local`.
stats-local: $(STAMP) ## the same against a running make local
	AWS_ENDPOINT_URL=http://127.0.0.1:3003 AWS_ACCESS_KEY_ID=local AWS_SECRET_ACCESS_KEY=local \
	AWS_DEFAULT_REGION=us-east-1 CHALLENGE_TABLE_NAME=ChallengeTable $(BIN)/captcha-stats $(ARGS)

submissions: $(STAMP) ## list, export or erase submissions, e.g. make submissions ARGS='export -o out.csv'
	$(BIN)/captcha-submissions $(ARGS)

# Against the submission store of a running `make local` (default: list).
submissions-local: $(STAMP) ## the same against a running make local
	AWS_ENDPOINT_URL=http://127.0.0.1:3003 AWS_ACCESS_KEY_ID=local AWS_SECRET_ACCESS_KEY=local \
	AWS_DEFAULT_REGION=us-east-1 SUBMISSION_TABLE_NAME=SubmissionTable $(BIN)/captcha-submissions $(or $(ARGS),list)

build: $(STAMP) ## sam build
	$(BIN)/sam build

# Checks the AWS credentials, asks (the first time), then runs sam build and sam deploy.
deploy: $(STAMP) ## check credentials, ask (the first time; ARGS='--guided' asks again), build, deploy
	$(BIN)/captcha-deploy $(ARGS)

# Removes the stack make deploy made (its name and region are saved in samconfig.toml).
delete: $(STAMP) ## remove the stack make deploy made
	$(BIN)/sam delete $(ARGS)

# Any other SAM CLI command with the project's pinned sam, e.g. make sam ARGS='logs --tail'.
sam: $(STAMP) ## any sam command with the pinned SAM CLI, e.g. make sam ARGS='logs --tail'
	$(BIN)/sam $(ARGS)

validate: $(STAMP) ## cfn-lint and sam validate --lint
	$(BIN)/cfn-lint template.yaml
	$(BIN)/sam validate --lint --region us-east-1

# A benchmark, not a test: prints a table and writes .aws-sam/bench.json (see docs/performance.md).
bench: $(STAMP) ## cold start and warm latency against a naive handler, e.g. make bench ARGS='--spawns 11'
	$(BIN)/captcha-bench $(ARGS)

clean: ## remove the venvs and build output
	rm -rf $(VENV) $(CHECKOV_VENV) .aws-sam .pytest_cache .ruff_cache
