# Two entry points on a fresh clone: `make run` and `make test`. Both build .venv on first use.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed

.PHONY: run test lint format bench console clean lock image-test

# The first run installs every dependency into .venv: once, then never again until the lock file changes.
# The versions are the lock file's, checked against its hashes: two installs a month apart get the same.
$(STAMP): requirements-dev.lock pyproject.toml
	@echo "Setting up .venv: installing the bot's dependencies. This happens once; on a slow network it takes a few minutes."
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet --quiet --require-hashes -r requirements-dev.lock
	$(BIN)/python -m pip install --quiet --quiet --no-deps -e .
	touch $(STAMP)
	@echo ".venv is ready; later runs start at once."

run: $(STAMP)
	$(BIN)/python -m bot

console: $(STAMP)
	$(BIN)/python -m bot console

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

test: lint
	$(BIN)/python -m pytest

format: $(STAMP)
	$(BIN)/ruff format .
	$(BIN)/ruff check --fix .

bench: $(STAMP)
	$(BIN)/python bench/load.py

# After changing dependencies in pyproject.toml: pin them again (needs the package index), then commit both.
lock: $(STAMP)
	$(BIN)/uv pip compile pyproject.toml --universal --python-version 3.11 --generate-hashes \
		--custom-compile-command "make lock" -q -o requirements.lock
	$(BIN)/uv pip compile pyproject.toml --extra dev --universal --python-version 3.11 --generate-hashes \
		--custom-compile-command "make lock" -q -o requirements-dev.lock
	@# The build backend too (pyproject.toml's [build-system]): the image builds the bot without fetching it.
	$(BIN)/python -c 'import tomllib; print(*tomllib.load(open("pyproject.toml", "rb"))["build-system"]["requires"], sep="\n")' \
		| $(BIN)/uv pip compile - --universal --python-version 3.11 --generate-hashes \
		--custom-compile-command "make lock" -q -o requirements-build.lock

# Opt-in, minutes: build the image from a local Debian base with podman and run it in a chroot (no Docker
# engine needed). Needs root, podman and debootstrap (it installs them with apt-get where missing).
image-test: $(STAMP)
	$(BIN)/python deploy/image_test.py

clean:
	rm -rf $(VENV) .pytest_cache .ruff_cache build *.egg-info
