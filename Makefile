# The README's two commands: `make demo` and `make test`. Each creates .venv and installs what it needs.
PY ?= python3
VENV := .venv
BIN := $(VENV)/bin

.PHONY: demo test lint venv clean

$(BIN)/.installed: pyproject.toml scripts/setup_venv.sh
	bash scripts/setup_venv.sh $(VENV)
	touch $@

venv: $(BIN)/.installed

demo: venv
	$(BIN)/cropray demo --workdir $${WORKDIR:-cropray-demo} --overwrite

test: venv
	$(BIN)/ruff check cropray tests jobs research
	$(BIN)/lint-imports
	$(BIN)/python -m pytest -q

lint: venv
	$(BIN)/ruff check cropray tests jobs research
	$(BIN)/lint-imports

clean:
	rm -rf $(VENV) .pytest_cache
