# The two commands (see README.md): `make demo` runs it locally, `make test` runs every test.
.PHONY: demo test setup build bench

demo:
	bash scripts/demo.sh

test:
	bash scripts/test.sh

setup:
	bash scripts/setup.sh --browser

build:
	bash scripts/build.sh

bench:
	bash scripts/setup.sh --browser && node bench/run.mjs
