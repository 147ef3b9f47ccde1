# Two commands do all set-up on a fresh machine (see README):
#   make book   build the rendered book into _build/html
#   make test   lint, unit tests, every notebook executed by nbval, the book built, browser check
SHELL := /bin/bash
VENV ?= .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed-stamp
export HF_HUB_OFFLINE := 1
export HF_DATASETS_OFFLINE := 1
export TRANSFER_LAB_CACHE ?= $(CURDIR)/.cache/transfer_lab
export PYTHONHASHSEED := 0

.PHONY: install book test unit notebooks-test lint html execute bench clean-cache

install: $(STAMP)

$(STAMP): pyproject.toml constraints.txt
	test -x $(PY) || python3 -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -c constraints.txt -e ".[book,test]"
	$(PY) -m ipykernel install --prefix $(VENV) --name python3 > /dev/null
	touch $(STAMP)

book: install html

html:
	$(VENV)/bin/jupyter-book build . -W -n --keep-going
	@echo "open _build/html/index.html"

lint: install
	$(PY) -m ruff check transfer_lab tests scripts benchmarks

unit: install
	$(PY) -m pytest tests -q

notebooks-test: install
	$(PY) -m pytest -q --nbval --nbval-sanitize-with tests/sanitize.cfg --nbval-cell-timeout 300 \
		-p no:cacheprovider book --ignore=_build

test: lint unit notebooks-test html browser

# Open every page of the built book in headless Chromium (installed from Debian if missing):
# figures, tracebacks, links, search, screenshots in _build/screenshots/. Needs `make html` first.
browser: install
	bash scripts/install_browser.sh
	$(PY) tests/browser/check_site.py --site _build/html --toc _toc.yml --screenshots _build/screenshots

# Re-execute every notebook in place (authors: after changing a chapter or the package).
execute: install
	for nb in $$(find book -name '*.ipynb' -not -path '*/_build/*' | sort); do \
		echo "$$nb"; $(VENV)/bin/jupyter nbconvert --to notebook --execute --inplace \
		--ExecutePreprocessor.timeout=600 "$$nb" || exit 1; done

bench: install
	$(PY) -m benchmarks.run_all

clean-cache:
	rm -rf $(TRANSFER_LAB_CACHE)
