# Two entry points: `make demo` (the main job) and `make test` (the whole suite).
# Both create .venv if it is missing and install torch first: TORCH pins the CPU build
# that ships with our dev machines; elsewhere run e.g. `make demo TORCH=torch`.
VENV  ?= .venv
PY    := $(VENV)/bin/python
PIP   := $(PY) -m pip
TORCH ?= torch==2.13.0
FASHION_DIR := /usr/share/datasets/fashion-mnist

.PHONY: demo test install dev fashion-mnist chromium own-data clean

$(VENV)/.installed: pyproject.toml
	test -x $(PY) || python3 -m venv $(VENV)
	$(PIP) install -q --upgrade pip
	$(PIP) install -q "$(TORCH)"
	$(PIP) install -q -e .
	touch $@

$(VENV)/.dev-installed: $(VENV)/.installed
	$(PIP) install -q -e ".[dev]"
	touch $@

install: $(VENV)/.installed
dev: $(VENV)/.dev-installed

demo: install
	$(VENV)/bin/trainwise study examples/quickstart.yaml --out studies/quickstart

# Real-data tests read Fashion-MNIST from the Debian package when it is installable here.
fashion-mnist:
	@if [ ! -d $(FASHION_DIR) ] && command -v apt-get >/dev/null && [ "$$(id -u)" = 0 ]; then \
		(apt-get update -qq && apt-get install -y -qq dataset-fashion-mnist) >/dev/null 2>&1 \
		|| echo "warning: could not install dataset-fashion-mnist; real-data tests will be skipped"; \
	fi

# An image folder from Fashion-MNIST for examples/own_data.yaml (your own images go the same way).
own-data: install fashion-mnist
	$(PY) examples/make_image_folder.py data/fashion-folder

# The report-rendering test screenshots report.html with headless Chromium when it is installable.
chromium:
	@if ! command -v chromium >/dev/null && command -v apt-get >/dev/null && [ "$$(id -u)" = 0 ]; then \
		(apt-get update -qq && apt-get install -y -qq chromium) >/dev/null 2>&1 \
		|| echo "warning: could not install chromium; the report-rendering test will be skipped"; \
	fi

test: dev fashion-mnist chromium
	$(VENV)/bin/pytest -q

clean:
	rm -rf $(VENV) studies runs
